import { medianAbsoluteDeviation, type SortedSamples } from 'tinybench'

/** Summary of repeated measurements, in ms. */
export interface SampleSummary {
  readonly median: number
  /** Median absolute deviation: the spread that one slow outlier does not inflate. */
  readonly mad: number
  readonly min: number
  readonly max: number
  readonly samples: readonly number[]
}

/** The median; the mean of the two middle values for an even count. */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of no values')
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export function summarize(values: readonly number[]): SampleSummary {
  const sorted = [...values].sort((a, b) => a - b)
  return {
    median: median(sorted),
    mad: medianAbsoluteDeviation(sorted as unknown as SortedSamples),
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
    samples: values,
  }
}

/** Rounds for reports: 3 significant decimals are plenty for ms figures and ratios. */
export function round3(value: number): number {
  return Math.round(value * 1000) / 1000
}
