/**
 * The progress line `Tributary.run` shows on a terminal: a bar with percent,
 * rate and ETA when every source knows how far it got, else a spinner with the
 * records read and their rate.
 */
import type { JobMetrics } from "../runtime/Metrics.ts"

const SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
const WIDTH = 30

/** 1234567 → "1.2M": a count that fits the line. */
export const compact = (n: number): string =>
  n >= 1e9 ? `${(n / 1e9).toFixed(1)}G` : n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : `${Math.round(n)}`

const seconds = (ms: number): string => (ms >= 60_000 ? `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s` : `${(ms / 1000).toFixed(1)}s`)

/** The line for `metrics` after `elapsed` ms; `frame` turns the spinner. */
export const line = (metrics: JobMetrics, elapsed: number, frame: number): string => {
  let read = 0
  let done = 0
  let total = 0
  let known = true
  for (const m of metrics.instances) {
    if (m.source === undefined) continue
    read += m.recordsIn
    if (m.progress === undefined) known = false
    else {
      done += m.progress.done
      total += m.progress.total
    }
  }
  const rate = elapsed > 0 ? (read * 1000) / elapsed : 0
  const counts = `${compact(read)} records read, ${compact(rate)}/s, ${seconds(elapsed)}`
  if (!known || total === 0) return `${SPINNER[frame % SPINNER.length]} ${counts}`
  const fraction = Math.min(1, done / total)
  const filled = Math.round(fraction * WIDTH)
  const eta = fraction > 0 && fraction < 1 ? `, ETA ${seconds(elapsed / fraction - elapsed)}` : ""
  return `[${"█".repeat(filled)}${"░".repeat(WIDTH - filled)}] ${Math.floor(fraction * 100)}% ${counts}${eta}`
}
