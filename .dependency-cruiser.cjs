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
      from: {
        pathNot: '^src/runtime/plan/load-plan\\.ts$',
        path: [
          '^src/runtime/(plan|schedule)/',
          '^src/runtime/governor/governor-policy\\.ts$',
          '^src/runtime/admission/(fit-policy|gate)\\.ts$',
          '^src/runtime/core/(clock|task-state)\\.ts$',
        ],
      },
      to: { path: '^(node:)?(fs|fs/promises|worker_threads|child_process|timers|timers/promises|net|http|dgram|cluster)$' },
    },
    // The layers of src/runtime, bottom up (docs/architecture.md "Layout"); each imports only the layers below it
    // (type-only imports included: a type names a concept, and a layer must not need a concept from above it):
    //   core/ ← plan/ ← schedule/            the pure floor: contracts, the plan, ordering and the speedup figures
    //   core/ ← governor/                    the machine's load and the per-agent demand; knows no task or gate
    //   admission/                           the gates a ready task passes: core, plan, schedule, governor
    //   report/                              what a run reports (events, RunResult): types of the layers above, only types
    //   coordination/ execution/ journal/ workspace/   the services a run uses; they may use each other
    //   actors/ ← run.ts ← runtime.ts (+ options.ts)   the engine and its facade
    {
      name: 'core-imports-nothing',
      severity: 'error',
      comment: 'core/ is the floor: errors, clock, config, task states. It imports nothing of troupe outside core/.',
      from: { path: '^src/runtime/core/' },
      to: { path: '^src/', pathNot: '^src/runtime/core/' },
    },
    {
      name: 'plan-imports-only-core',
      severity: 'error',
      comment: 'plan/ (schema, linking, graph, agents) knows only core/: no scheduling, admission, journal or execution.',
      from: { path: '^src/runtime/plan/' },
      to: { path: '^src/', pathNot: '^src/runtime/(core|plan)/' },
    },
    {
      name: 'schedule-imports-only-plan-and-core',
      severity: 'error',
      comment: 'schedule/ (ordering, simulation, analysis, speedup figures) is pure and sits on plan/ and core/ only.',
      from: { path: '^src/runtime/schedule/' },
      to: { path: '^src/', pathNot: '^src/runtime/(core|plan|schedule)/' },
    },
    {
      name: 'governor-imports-only-core',
      severity: 'error',
      comment:
        'governor/ (probe, sampler thread, policy, learnt demand) knows no task, gate or run: ' +
        'it sees the fit gate as its own FitObserver.',
      from: { path: '^src/runtime/governor/' },
      to: { path: '^src/', pathNot: '^src/runtime/(core|governor)/' },
    },
    {
      name: 'admission-imports-only-lower-layers',
      severity: 'error',
      comment:
        'admission/ (gates, limits, claims, budget, dispatcher, fit gate) stands on core, plan, schedule and governor; ' +
        'it runs nothing.',
      from: { path: '^src/runtime/admission/' },
      to: { path: '^src/', pathNot: '^src/runtime/(core|plan|schedule|governor|admission)/' },
    },
    {
      name: 'report-holds-types-of-lower-layers',
      severity: 'error',
      comment: 'report/ (run events, RunResult) names the lower layers\' types, and imports only types: a run\'s report is a shape.',
      from: { path: '^src/runtime/report/' },
      to: { path: '^src/', pathNot: '^src/runtime/(core|plan|schedule|governor|admission|report)/' },
    },
    {
      name: 'report-imports-types-only',
      severity: 'error',
      comment: 'report/ holds shapes: it loads no code of other layers.',
      from: { path: '^src/runtime/report/' },
      to: { path: '^src/', pathNot: '^src/runtime/report/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'services-stay-below-the-engine',
      severity: 'error',
      comment: 'coordination/, execution/, journal/ and workspace/ serve runs: they never import the actors, Run or the runtime facade.',
      from: { path: '^src/runtime/(coordination|execution|journal|workspace)/' },
      to: { path: '^src/actors/|^src/runtime/(run|runtime|options)\\.ts$' },
    },
    {
      name: 'actors-stay-below-the-facade',
      severity: 'error',
      comment: 'actors/ (task and run machines) are driven by run.ts and runtime.ts, never the other way round.',
      from: { path: '^src/actors/' },
      to: { path: '^src/runtime/(run|runtime|options)\\.ts$' },
    },
    {
      name: 'worker-entry-imports-its-protocol-only',
      severity: 'error',
      comment: 'Every import of a worker entry is paid by every new thread.',
      from: { path: '^src/runtime/execution/threads/worker-entry\\.ts$' },
      to: { path: '^src/', pathNot: '^src/runtime/execution/threads/protocol\\.ts$', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'sampler-thread-imports-its-readers-only',
      severity: 'error',
      comment: 'The governor\'s sampler thread loads only the /proc and cgroup readers (system-probe.ts bundles exactly these).',
      from: { path: '^src/runtime/governor/sampler-worker\\.ts$' },
      to: { path: '^src/', pathNot: '^src/runtime/governor/(machine-limits|proc-stats)\\.ts$', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'leaves-stay-leaves',
      severity: 'error',
      comment: 'The shared contracts import nothing of troupe.',
      from: { path: '^src/runtime/core/(clock|errors|task-state)\\.ts$|^src/runtime/execution/threads/protocol\\.ts$' },
      to: { path: '^src/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'bench-uses-public-entries',
      severity: 'error',
      comment:
        'The bench measures what users get: it imports the public entries only — and two pure pieces it measures or applies ' +
        'by themselves, the parallelism verdict and the governor\'s system probe.',
      from: { path: '^src/bench/' },
      to: { path: '^src/', pathNot: '^src/(bench/|index\\.ts$|dashboard\\.ts$|runtime/schedule/verdict\\.ts$|runtime/governor/system-probe\\.ts$)' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
}
