/**
 * troupe/dashboard: the views of a run — the web dashboard, the self-contained HTML report
 * and the monitor both of them (and the CLI's live view) read. A second entry, so
 * `import { createRuntime } from 'troupe'` loads no HTTP server.
 */
export { startDashboard } from './dashboard/server.ts'
export type { Dashboard, DashboardOptions } from './dashboard/server.ts'
export { renderReport } from './dashboard/report.ts'
export type { ReportContext } from './dashboard/report.ts'
export { Monitor } from './monitor/monitor.ts'
export type { MonitorOptions, MonitorSnapshot, MonitorEvent } from './monitor/monitor.ts'
export type { RunSnapshot, TaskView, AttemptInterval, AgentUtilisation, FinalFigures } from './monitor/run-monitor.ts'
export type { GovernorView, GovernorThresholds } from './monitor/governor-monitor.ts'
export type { MessagesView, MessageView, RepairView } from './monitor/run-facts.ts'
