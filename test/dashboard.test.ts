/**
 * The web dashboard end to end in headless Chromium: a streaming job behind the
 * management server, its graph drawn with rising counts, the Suspend button, and
 * a screenshot kept in test/artifacts/dashboard.png.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { chromium } from "playwright-core"
import { describe, expect, it } from "vitest"
import { TOKEN, withManagedJob } from "./management-helpers.ts"

const CHROMIUM = "/usr/bin/chromium"
const ARTIFACTS = path.join(import.meta.dirname, "artifacts")

describe.skipIf("Bun" in globalThis || "Deno" in globalThis || !fs.existsSync(CHROMIUM))("dashboard", () => {
  it("shows the job's graph with rising counts and suspends the job with its button", async () => {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    })
    try {
      await withManagedJob(async (base, id) => {
        const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
        // The token comes in the URL's fragment, which never reaches the server's logs.
        await page.goto(`${base}/#token=${TOKEN}`)
        await page.locator("#jobs li", { hasText: "managed" }).waitFor()
        const vertices = page.locator("#graph g.vertex")
        await vertices.first().waitFor()
        const names = await vertices.evaluateAll((gs) => gs.map((g) => g.getAttribute("data-vertex")))
        const graph: any = await (await fetch(`${base}/api/jobs/${id}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()
        expect(names.sort()).toEqual(graph.graph.vertices.map((v: { name: string }) => v.name).sort())
        expect(await page.locator("#graph path.edge").count()).toBe(graph.graph.edges.length)
        // The source vertex's count of records in rises between two refreshes.
        const source = vertices.filter({ hasText: "generator" }).locator("text.records-in")
        const count = async () => Number((await source.textContent())!.match(/in (\d+)/)![1])
        const first = await count()
        await expect.poll(count, { timeout: 10_000 }).toBeGreaterThan(first)
        await expect.poll(() => page.locator("#snapshots tbody tr").count(), { timeout: 10_000 }).toBeGreaterThan(0)
        await page.getByRole("button", { name: "Suspend" }).click()
        await expect.poll(() => page.locator("#job-status").textContent(), { timeout: 10_000 }).toBe("suspended")
        await expect.poll(() => page.locator("#jobs li", { hasText: "managed" }).textContent()).toContain("suspended")
        fs.mkdirSync(ARTIFACTS, { recursive: true })
        await page.screenshot({ path: path.join(ARTIFACTS, "dashboard.png"), fullPage: true })
      })
    } finally {
      await browser.close()
    }
  })

  it("without the token the page says so and shows no job", async () => {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"] })
    try {
      await withManagedJob(async (base) => {
        const page = await browser.newPage()
        await page.goto(`${base}/`)
        await expect.poll(() => page.locator("#error").textContent()).toContain("not signed in")
        expect(await page.locator("#jobs li").count()).toBe(0)
      })
    } finally {
      await browser.close()
    }
  })
})
