// The Tributary dashboard: plain browser JavaScript, no build step. Everything
// it shows comes from the management API with the bearer token, polled each second.
const $ = (id) => document.getElementById(id)
const SVG = "http://www.w3.org/2000/svg"
let token = sessionStorage.getItem("tributary-token") ?? ""
let selected
const hashToken = new URLSearchParams(location.hash.slice(1)).get("token")
if (hashToken) {
  token = hashToken
  sessionStorage.setItem("tributary-token", token)
  history.replaceState(null, "", location.pathname)
}

const api = async (path, method = "GET") => {
  const response = await fetch(`/api${path}`, { method, headers: { authorization: `Bearer ${token}` } })
  if (response.status === 401) throw new Error("not signed in: enter the token")
  const body = await response.json().catch(() => undefined)
  if (!response.ok) throw new Error(body?.reason ?? `${method} ${path}: ${response.status}`)
  return body
}

const el = (tag, text, attrs = {}) => {
  const e = document.createElement(tag)
  if (text !== undefined) e.textContent = text
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v)
  return e
}
const svg = (tag, attrs, text) => {
  const e = document.createElementNS(SVG, tag)
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v))
  if (text !== undefined) e.textContent = text
  return e
}
const rows = (table, data) => {
  const body = $(table).querySelector("tbody")
  body.replaceChildren(...data.map((cells) => {
    const tr = el("tr")
    for (const c of cells) tr.append(el("td", String(c)))
    return tr
  }))
}
const rate = (n) => (n >= 1000 ? `${(n / 1000).toFixed(1)}k/s` : `${n.toFixed(0)}/s`)
// Backpressure: the fullest input queue, green (empty) to red (full).
const fillColour = (fill) => `hsl(${Math.round(120 * (1 - Math.min(1, fill)))}, 70%, 80%)`

/** Vertices in columns by their distance from a source; edges as curves, labelled with their kind and rate. */
const drawGraph = (graph, instances) => {
  const depth = new Map(graph.vertices.map((v) => [v.id, 0]))
  for (let pass = 0; pass < graph.vertices.length; pass++) {
    for (const e of graph.edges) depth.set(e.to, Math.max(depth.get(e.to), depth.get(e.from) + 1))
  }
  const columns = new Map()
  for (const v of graph.vertices) columns.set(depth.get(v.id), [...(columns.get(depth.get(v.id)) ?? []), v])
  const W = 240, H = 70, GX = 90, GY = 30
  const at = new Map()
  for (const [d, vs] of columns) vs.forEach((v, i) => at.set(v.id, { x: 20 + d * (W + GX), y: 20 + i * (H + GY) }))
  const stats = (v) => {
    const mine = instances.filter((m) => m.vertex === v.name)
    const sum = (f) => mine.reduce((n, m) => n + f(m), 0)
    const fill = Math.max(0, ...mine.flatMap((m) => m.queues.map((q) => q.size / q.capacity)))
    return { recordsIn: sum((m) => m.recordsIn), recordsOut: sum((m) => m.recordsOut), inRate: sum((m) => m.recordsInRate), outRate: sum((m) => m.recordsOutRate), fill }
  }
  const g = $("graph")
  const width = Math.max(...[...at.values()].map((p) => p.x)) + W + 20
  const height = Math.max(...[...at.values()].map((p) => p.y)) + H + 20
  // Drawn at its own size (never scaled up), scrolled when wider than the page.
  g.setAttribute("viewBox", `0 0 ${width} ${height}`)
  g.setAttribute("width", width)
  g.setAttribute("height", height)
  const parts = []
  for (const e of graph.edges) {
    const a = at.get(e.from), b = at.get(e.to)
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2
    const from = graph.vertices.find((v) => v.id === e.from)
    const to = graph.vertices.find((v) => v.id === e.to)
    // An edge into a full queue is where the backpressure is.
    const fill = stats(to).fill
    parts.push(svg("path", {
      class: "edge",
      d: `M${x1},${y1} C${x1 + GX / 2},${y1} ${x2 - GX / 2},${y2} ${x2},${y2}`,
      stroke: `hsl(${Math.round(120 * (1 - Math.min(1, fill)))}, 60%, 40%)`,
      "marker-end": "url(#arrow)"
    }))
    parts.push(svg("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 6, "text-anchor": "middle", class: "edge-label" }, `${e.kind} ${rate(stats(from).outRate)}`))
  }
  for (const v of graph.vertices) {
    const { x, y } = at.get(v.id)
    const s = stats(v)
    const node = svg("g", { class: "vertex", "data-vertex": v.name, transform: `translate(${x},${y})` })
    node.append(
      svg("rect", { width: W, height: H, rx: 6, fill: fillColour(s.fill), stroke: "#4b5563" }),
      svg("text", { x: 8, y: 16, "font-weight": "bold" }, `${v.name} ×${v.parallelism}`),
      svg("text", { x: 8, y: 34, class: "records-in" }, `in ${s.recordsIn} (${rate(s.inRate)})`),
      svg("text", { x: 8, y: 50, class: "records-out" }, `out ${s.recordsOut} (${rate(s.outRate)})`),
      svg("text", { x: 8, y: 64 }, `queues ${Math.round(s.fill * 100)} %`)
    )
    parts.push(node)
  }
  const defs = svg("defs", {})
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto" })
  marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#7b8794" }))
  defs.append(marker)
  g.replaceChildren(defs, ...parts)
}

const refresh = async () => {
  try {
    const jobs = await api("/jobs")
    selected ??= jobs[0]?.id
    $("jobs").replaceChildren(...jobs.map((j) => {
      const li = el("li", `${j.name} `, { "data-job": j.id })
      li.append(el("span", j.status, { class: `status ${j.status}` }))
      if (j.id === selected) li.classList.add("selected")
      li.onclick = () => { selected = j.id; refresh() }
      return li
    }))
    if (selected !== undefined) {
      const [job, metrics] = await Promise.all([api(`/jobs/${selected}`), api(`/jobs/${selected}/metrics`)])
      $("job").hidden = false
      $("job-name").textContent = job.name
      $("job-status").textContent = job.status
      $("job-status").className = `status ${job.status}`
      drawGraph(job.graph, metrics.instances)
      rows("watermarks", metrics.instances.map((m) => [m.vertex, m.instance, m.watermark === null ? "–" : new Date(m.watermark).toISOString(), m.watermarkLag ?? "–", m.lateEvents, m.deadLetters, m.retries]))
      rows("snapshots", metrics.snapshots.slice(-20).reverse().map((s) => [s.id, new Date(s.start).toLocaleTimeString(), s.duration ?? "–", s.alignment === null ? "–" : Math.round(s.alignment), s.bytes, s.keys, s.status]))
      $("exceptions").replaceChildren(...[...metrics.exceptions].reverse().map((e) => {
        const li = el("li", `${new Date(e.time).toLocaleTimeString()}${e.restarted ? " (restarted)" : ""}`)
        li.append(el("pre", e.message))
        return li
      }))
    }
    $("error").textContent = ""
  } catch (error) {
    $("error").textContent = error.message
  }
}

for (const button of document.querySelectorAll("#actions button")) {
  button.onclick = async () => {
    try {
      await api(`/jobs/${selected}/${button.dataset.action}`, "POST")
      await refresh()
    } catch (error) {
      $("error").textContent = error.message
    }
  }
}
$("login").onsubmit = (event) => {
  event.preventDefault()
  token = $("token").value
  sessionStorage.setItem("tributary-token", token)
  refresh()
}
refresh()
setInterval(refresh, 1000)
