/** The management server of an embedded job: every endpoint against a running job, and the token it asks for. */
import { describe, expect, it } from "vitest"
import { TOKEN, withManagedJob } from "./management-helpers.ts"

const auth = { authorization: `Bearer ${TOKEN}` }

const get = async (url: string, headers: Record<string, string> = auth): Promise<{ status: number; body: any }> => {
  const response = await fetch(url, { headers })
  return { status: response.status, body: response.headers.get("content-type")?.includes("json") ? await response.json() : await response.text() }
}
const post = async (url: string, headers: Record<string, string> = auth, payload?: unknown): Promise<{ status: number; body: any }> => {
  const response = await fetch(url, {
    method: "POST",
    headers: payload === undefined ? headers : { ...headers, "content-type": "application/json" },
    body: payload === undefined ? undefined : JSON.stringify(payload)
  })
  return { status: response.status, body: await response.json().catch(() => undefined) }
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe.skipIf("Bun" in globalThis || "Deno" in globalThis)("management server", () => {
  it("without the token reads nothing of a job and changes nothing; the API's description and the dashboard's files are public", async () => {
    await withManagedJob(async (base, id) => {
      for (const headers of [{} as Record<string, string>, { authorization: "Bearer wrong" }, { authorization: `Basic ${btoa(`x:${TOKEN}`)}` }]) {
        for (const path of ["/api/jobs", `/api/jobs/${id}`, `/api/jobs/${id}/metrics`, `/api/jobs/${id}/snapshots`, `/api/jobs/${id}/exceptions`, "/metrics"]) {
          const { status, body } = await get(base + path, headers)
          expect([path, status]).toEqual([path, 401])
          expect(JSON.stringify(body ?? "")).not.toContain("managed")
        }
        for (const action of ["cancel", "suspend", "restart", "stop"]) {
          expect((await post(`${base}/api/jobs/${id}/${action}`, headers)).status).toBe(401)
        }
      }
      const { body: jobs } = await get(`${base}/api/jobs`)
      expect(jobs).toEqual([{ id, name: "managed", status: "running" }])
      const openapi = (await get(`${base}/api/openapi.json`, {})).body
      expect(JSON.parse(typeof openapi === "string" ? openapi : JSON.stringify(openapi)).paths).toHaveProperty("/api/jobs/{id}/metrics")
      expect((await get(`${base}/docs`, {})).body).toContain("swagger")
      expect((await get(`${base}/`, {})).body).toContain("<svg id=\"graph\"")
    })
  })

  it("lists jobs and shows a job's status, graph, metrics, snapshots and exceptions; Prometheus' counters rise", async () => {
    await withManagedJob(async (base, id) => {
      const { body: job } = await get(`${base}/api/jobs/${id}`)
      expect(job.status).toBe("running")
      expect(job.graph.vertices.map((v: { parallelism: number }) => v.parallelism)).toEqual(job.graph.vertices.map(() => 2))
      expect(job.graph.vertices.some((v: { source: string | null }) => v.source === "generator")).toBe(true)
      expect(job.graph.edges.map((e: { kind: string }) => e.kind)).toContain("Partitioned")
      await sleep(500)
      const { body: metrics } = await get(`${base}/api/jobs/${id}/metrics`)
      const source = metrics.instances.filter((m: { source: string | null }) => m.source === "generator")
      expect(source).toHaveLength(2)
      expect(source.reduce((n: number, m: { recordsIn: number }) => n + m.recordsIn, 0)).toBeGreaterThan(0)
      expect(metrics.instances.every((m: { queues: Array<unknown> }) => Array.isArray(m.queues))).toBe(true)
      const { body: snapshots } = await get(`${base}/api/jobs/${id}/snapshots`)
      expect(snapshots.some((s: { status: string }) => s.status === "completed")).toBe(true)
      expect((await get(`${base}/api/jobs/${id}/exceptions`)).body).toEqual([])
      expect((await get(`${base}/api/jobs/job-none`)).status).toBe(404)
      const scrape = async () => {
        const { status, body } = await get(`${base}/metrics`)
        expect(status).toBe(200)
        return (body as string).split("\n")
          .filter((l) => l.startsWith("tributary_received_count{") && l.includes('job="managed"') && l.includes('vertex="generator'))
          .reduce((n, l) => n + Number(l.split(" ").at(-1)), 0)
      }
      const first = await scrape()
      await sleep(300)
      expect(await scrape()).toBeGreaterThan(first)
    })
  })

  it("actions: suspend, resume, restart, export a snapshot, refuse what the state does not allow, stop with drain", async () => {
    await withManagedJob(async (base, id) => {
      await sleep(300)
      expect((await post(`${base}/api/jobs/${id}/suspend`)).body).toMatchObject({ status: "suspended" })
      const refused = await post(`${base}/api/jobs/${id}/restart`)
      expect(refused.status).toBe(409)
      expect(refused.body.reason).toContain("only a running job can restart")
      expect((await post(`${base}/api/jobs/${id}/resume`)).body).toMatchObject({ status: "running" })
      expect((await post(`${base}/api/jobs/${id}/restart`)).body).toMatchObject({ status: "running" })
      expect((await post(`${base}/api/jobs/${id}/snapshots/export`, auth, { name: "saved" })).body).toMatchObject({ status: "running" })
      // An exported snapshot can be deleted, once; the job's own cannot.
      const remove = async (name: string) => {
        const response = await fetch(`${base}/api/jobs/${id}/snapshots/${name}`, { method: "DELETE", headers: auth })
        return { status: response.status, body: await response.json() }
      }
      expect((await remove("saved")).body).toMatchObject({ status: "running" })
      expect(await remove("saved")).toMatchObject({ status: 409, body: { reason: 'job "managed": no snapshot exported as "saved"' } })
      expect(await remove("managed")).toMatchObject({ status: 409, body: { reason: `job "managed": "managed" names the job's own snapshots, kept by its retention` } })
      expect((await post(`${base}/api/jobs/${id}/stop`)).body).toMatchObject({ status: "completed" })
      expect((await post(`${base}/api/jobs/none/cancel`)).status).toBe(404)
    })
  })

  it("cancel", async () => {
    await withManagedJob(async (base, id) => {
      expect((await post(`${base}/api/jobs/${id}/cancel`)).body).toMatchObject({ status: "cancelled" })
      expect((await get(`${base}/api/jobs`)).body).toEqual([{ id, name: "managed", status: "cancelled" }])
    })
  })
})
