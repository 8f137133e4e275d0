/** Fixed argument values of CLI commands, in a leaf so that main.ts loads nothing else for them. */

/** The documents `troupe schema` prints. */
export const SCHEMA_NAMES = ['plan', 'config'] as const
export type SchemaName = (typeof SCHEMA_NAMES)[number]

/** The plans `troupe init` writes. */
export const INIT_TEMPLATES = ['checks', 'review-fanout', 'feature-team'] as const
export type InitTemplate = (typeof INIT_TEMPLATES)[number]

/** The plan file `troupe init` writes, and the one `troupe run` and `troupe plan` read when given none. */
export const INIT_PLAN_FILE = 'plan.yaml'
