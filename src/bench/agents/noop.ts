/** Bench agent (and raw piscina worker): does nothing, to measure per-task overhead alone. */
export default function noop(): null {
  return null
}
