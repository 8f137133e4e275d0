/**
 * Import rules of troupe's floor plan, checked by `npm test` (npm run lint:imports).
 * See docs/architecture.md "Layout" for the picture these rules keep true.
 * @type {import('dependency-cruiser').IConfiguration}
 */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'No import circles anywhere in src (type-only imports included).',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'engine-knows-no-views',
      severity: 'error',
      comment: 'The engine (runtime, actors) never imports the CLI, the monitor or the dashboard.',
      from: { path: '^src/(runtime|actors)/' },
      to: { path: '^src/(cli|monitor|dashboard|bench)/' },
    },
    {
      name: 'library-entry-loads-no-views',
      severity: 'error',
      comment: "import { createRuntime } from 'troupe' must load no server: views are the second entry.",
      from: { path: '^src/index\\.ts$' },
      to: { path: '^src/(cli|monitor|dashboard|bench)/|^src/dashboard\\.ts$' },
    },
    {
      name: 'pure-core-does-no-io',
      severity: 'error',
      comment: 'Plan, graph and scheduling code, and the governor policy, are pure: no files, threads or processes (load-plan.ts is the plan\'s edge: it reads files and finds modules).',
      from: { pathNot: '^src/runtime/plan/load-plan\\.ts$', path: '^src/runtime/(plan|schedule)/|^src/runtime/admission/(governor-policy|gate)\\.ts$|^src/actors/task-state\\.ts$|^src/runtime/core/clock\\.ts$' },
      to: { path: '^(node:)?(fs|fs/promises|worker_threads|child_process|timers|timers/promises|net|http|dgram|cluster)$' },
    },
    {
      name: 'plan-and-schedule-stay-below-the-engine',
      severity: 'error',
      comment: 'plan/ and schedule/ import only each other and core/: they know no admission, journal or execution.',
      from: { path: '^src/runtime/(plan|schedule)/' },
      to: { path: '^src/runtime/(admission|journal|execution|workspace)/|^src/runtime/(run|runtime)\\.ts$|^src/actors/' },
    },
    {
      name: 'worker-entry-imports-its-protocol-only',
      severity: 'error',
      comment: 'Every import of a worker entry is paid by every new thread.',
      from: { path: '^src/runtime/execution/threads/worker-entry\\.ts$' },
      to: { path: '^src/', pathNot: '^src/runtime/execution/threads/protocol\\.ts$', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'leaves-stay-leaves',
      severity: 'error',
      comment: 'The shared contracts import nothing of troupe (types of the plan excepted for gates).',
      from: { path: '^src/runtime/core/(clock|errors)\\.ts$|^src/actors/task-state\\.ts$|^src/runtime/execution/threads/protocol\\.ts$' },
      to: { path: '^src/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'bench-uses-public-entries',
      severity: 'error',
      comment: 'The bench measures what users get: it imports the public entries only.',
      from: { path: '^src/bench/' },
      to: { path: '^src/', pathNot: '^src/(bench/|index\\.ts$|dashboard\\.ts$)' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
}
