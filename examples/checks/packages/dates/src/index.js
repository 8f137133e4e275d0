export function isoDay(date) {
  return date.toISOString().slice(0, 10)
}
