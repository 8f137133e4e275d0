/** An argument as a POSIX shell would need it to be typed. */
export function quoteArg(value: string): string {
  return /^[\w./:@=+-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`
}
