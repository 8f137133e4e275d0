/**
 * Sets `record[key] = value` as an own, enumerable data property, whatever the key: a
 * user-chosen name (a task id, an agent name) may be `__proto__`, which plain assignment
 * would turn into a prototype change and lose.
 */
export function setOwn<T>(record: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true })
}
