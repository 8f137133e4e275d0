import type { SchemaName } from './choices.ts'
import { EXIT } from './exit-codes.ts'
import { jsonSchema } from './json-schema.ts'

/**
 * `troupe schema [plan|config]`: prints the JSON Schema of a plan file (default) or of
 * `troupe.config.json` on stdout, for editors (`# yaml-language-server: $schema=…`).
 */
export function schemaCommand(name: SchemaName): number {
  process.stdout.write(`${JSON.stringify(jsonSchema(name), null, 2)}\n`)
  return EXIT.ok
}
