export function mean(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('mean of no values')
  return values.reduce((sum, v) => sum + v, 0) / values.length
}
