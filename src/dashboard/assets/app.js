// troupe dashboard: renders MonitorSnapshot objects (src/monitor/monitor.ts). Live, they
// arrive over Server-Sent Events from /events; in a `troupe report` file, one snapshot is
// embedded in #troupe-data and nothing is fetched. User text always goes in via
// textContent, never as markup.
;(() => {
  // biome-ignore lint/suspicious/noRedundantUseStrict: a classic script in the page, not a module
  'use strict'

  const SVG = 'http://www.w3.org/2000/svg'
  const STATES = ['PENDING', 'QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'SKIPPED', 'CANCELLED', 'AWAITING_APPROVAL']
  const $ = (id) => document.getElementById(id)
  let current = { runs: [], governor: { status: 'n/a' } }
  let selectedRun
  /** The task whose drill-down is open, and what the server sent for it (log, diff). */
  let selectedTask
  let fetched = { key: '', log: undefined, diff: undefined }
  let filter = ''
  /** What the server sent for each task awaiting approval (diff, output, log tail), by run, task and since. */
  const reviews = new Map()
  /** What the approvals box shows now: rebuilt only when it changes, so a reason being typed is kept. */
  let approvalsShown = ''
  /** The live stream: `open`, `ended` (the server closed it) or undefined. */
  let stream
  /** Log lines a card shows; its drill-down shows them all. */
  const CARD_LOGS = 5
  /** The run's messages as the server last sent them (/api/messages), and when: refreshed while the run runs. */
  let messages = { key: '', at: 0, body: undefined }
  /** How often a live page asks for the messages again while the run runs, in ms. */
  const MESSAGES_EVERY_MS = 2000

  /**
   * Characters that could mislead a reader of agent- or plan-made text (logs, outputs, errors, notes, diffs): controls but
   * tab and newline, bidi overrides and isolates, zero-width marks. Every text the page inserts shows them as `�`.
   */
  const MISLEADING = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g
  const visible = (text) => String(text).replace(MISLEADING, '\ufffd')

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag)
    for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined) node.setAttribute(k, String(v))
    for (const child of children) node.append(typeof child === 'string' ? visible(child) : child)
    return node
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag)
    for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined) node.setAttribute(k, String(v))
    if (text !== undefined) node.textContent = visible(text)
    return node
  }

  function ms(value) {
    if (value === undefined || value === null) return '—'
    if (value < 1000) return `${Math.round(value)} ms`
    if (value < 60000) return `${(value / 1000).toFixed(2)} s`
    return `${Math.floor(value / 60000)} min ${Math.round((value % 60000) / 1000)} s`
  }

  function pick() {
    const runs = current.runs
    const run = runs.find((r) => r.runId === selectedRun) || runs[runs.length - 1]
    return run
  }

  function render() {
    const run = pick()
    renderRunSelect()
    renderGovernor(current.governor)
    if (!run) {
      $('run-name').textContent = '— waiting for a run'
      return
    }
    $('run-name').textContent = visible(run.name)
    $('run-meta').textContent = `run ${run.runId} · ${run.strategy} · ${run.status}`
    document.body.dataset.status = run.status
    // Live only while the run runs: a finished run on an open stream says so (a new run makes it live again).
    if (stream === 'open') $('connection').textContent = run.status === 'running' ? 'live' : 'run ended'
    renderTotals(run)
    renderControls(run)
    renderCards(run)
    renderApprovals(run)
    renderPauses(run)
    renderNotes(run)
    renderMessages(run)
    renderTimeline(run)
    renderGraph(run)
    renderAgents(run)
    renderDetail(run)
  }

  function renderRunSelect() {
    const select = $('run-select')
    select.hidden = current.runs.length < 2
    const ids = current.runs.map((r) => r.runId)
    if (select.options.length !== ids.length || ids.some((id, i) => select.options[i].value !== id)) {
      select.replaceChildren(...ids.map((id) => el('option', { value: id }, id)))
    }
    const run = pick()
    if (run) select.value = run.runId
  }

  function stat(label, value, id) {
    return el('div', { class: 'stat', id }, el('span', { class: 'label' }, label), el('span', { class: 'value' }, value))
  }

  function renderTotals(run) {
    const f = run.final
    const items = STATES.map((s) => stat(s.toLowerCase(), String(run.counts[s]), `count-${s}`))
    items.push(stat('elapsed', ms(f ? f.makespanMs : run.elapsedMs), 'elapsed'))
    if (!f) items.push(stat('ETA', run.etaMs === undefined ? 'unknown' : ms(run.etaMs), 'eta'))
    items.push(stat(f ? 'speedup' : 'speedup so far', `${(f ? f.speedup : run.speedup).toFixed(2)}x`, 'speedup'))
    if (f) {
      items.push(stat('sequential', ms(f.sequentialMs), 'sequential'))
      items.push(stat('lower bound', ms(f.lowerBoundMs), 'lower-bound'))
      items.push(stat('efficiency', `${(f.efficiency * 100).toFixed(0)} %`, 'efficiency'))
      items.push(stat('verdict', f.parallelization, 'verdict'))
    }
    $('totals').replaceChildren(...items)
  }

  function renderControls(run) {
    const controls = $('controls')
    if (!controls) return
    // Nothing to control once the run is over (and never in a report).
    controls.hidden = current.static === true || run.status !== 'running'
    $('max-parallel-current').textContent = `now ${run.maxParallel}`
    $('max-parallel-current').dataset.value = String(run.maxParallel)
    const input = $('max-parallel-input')
    if (document.activeElement !== input && input.value === '') input.value = String(run.maxParallel)
    $('max-parallel-apply').disabled = run.status !== 'running'
  }

  function gauge(label, percent, thresholds) {
    const width = 240
    const g = svg('svg', { width, height: 34, viewBox: `0 0 ${width} 34`, class: 'gauge', role: 'img', 'aria-label': label })
    g.append(svg('rect', { x: 0, y: 4, width, height: 16, class: 'gauge-track' }))
    if (percent !== undefined) {
      g.append(svg('rect', { x: 0, y: 4, width: (Math.min(100, percent) / 100) * width, height: 16, class: 'gauge-fill' }))
    }
    if (thresholds) {
      for (const [cls, p] of [['threshold-throttle', thresholds.throttlePercent], ['threshold-resume', thresholds.resumePercent]]) {
        const x = (p / 100) * width
        g.append(svg('line', { x1: x, x2: x, y1: 0, y2: 24, class: cls }))
        g.append(svg('text', { x: Math.min(width - 20, x + 2), y: 33, class: 'gauge-mark' }, `${p}%`))
      }
    }
    const reading = percent === undefined ? 'n/a' : `${percent.toFixed(0)} %`
    return el('div', { class: 'gauge-row' }, el('span', { class: 'label' }, `${label} ${reading}`), g)
  }

  function renderGovernor(gov) {
    const t = gov.thresholds
    const throttled = `governor: throttled${gov.reason ? ` (${gov.reason})` : ''}`
    const status = gov.status === 'n/a' ? 'governor: n/a' : gov.status === 'throttled' ? throttled : 'governor: admitting'
    const r = gov.report
    if (r) {
      const periods = `${r.throttleEvents} period${r.throttleEvents === 1 ? '' : 's'}`
      const peaks = `peak CPU ${r.peakCpuPercent} % · peak memory ${r.peakMemoryMb} MB · ${r.samples} samples`
      const line = `governor (${r.mode}): throttled ${ms(r.throttledMs)} in ${periods} · ${peaks}`
      const heldText = r.heldMs ? `tasks held: ${ms(r.heldMs.cpu)} for CPU, ${ms(r.heldMs.memory)} for memory` : ''
      const held = r.heldMs ? el('div', { id: 'governor-held-time' }, heldText) : ''
      const report = el('div', { id: 'governor-report' }, r.samples > 0 ? line : `governor (${r.mode}): no samples taken`)
      return $('governor-body').replaceChildren(report, held, demandTable(r.agents))
    }
    $('governor-body').replaceChildren(
      el('div', { id: 'governor-status', class: `pill ${gov.status}` }, status),
      gauge('cpu', gov.cpuPercent, t?.cpu),
      gauge('memory', gov.memoryPercent, t?.memory),
      gov.held ? el('div', { id: 'governor-held' }, `last hold: ${gov.held.message}`) : '',
      demandTable(gov.agents),
    )
  }

  /** Per-agent estimates (RunResult.governor.agents, Runtime.agentDemand()): what one attempt is predicted to use. */
  function demandTable(agents) {
    const names = Object.keys(agents || {}).sort()
    if (names.length === 0) return ''
    const head = el('tr', {}, ...['agent', 'CPU / attempt', 'memory', 'source'].map((h) => el('th', {}, h)))
    const rows = names.map((name) => {
      const d = agents[name]
      const source = d.source === 'measured' ? `measured, ${d.samples} attempt${d.samples === 1 ? '' : 's'}` : 'plan'
      const memory = d.memoryMb === undefined ? '—' : `~${d.memoryMb} MB`
      return el('tr', {}, ...[name, `~${Number(d.cpu).toFixed(2)} cores`, memory, source].map((cell) => el('td', {}, cell)))
    })
    return el('table', { id: 'governor-agents' }, el('thead', {}, head), el('tbody', {}, ...rows))
  }

  function renderCards(run) {
    const cards = run.tasks.map((t) => {
      const fraction = t.state === 'COMPLETED' ? 1 : (t.fraction ?? 0)
      const elapsed = t.runningSince !== undefined ? run.at - t.runningSince : t.busyMs
      const fill = el('div', { class: 'fill' })
      // Set through CSSOM: the page's CSP forbids style attributes.
      fill.style.width = `${(fraction * 100).toFixed(1)}%`
      const bar = el('div', { class: 'bar' }, fill)
      const card = el(
        'article',
        {
          class: `card ${t.state}${t.id === selectedTask ? ' selected' : ''}${t.repairs ? ' repaired' : ''}`,
          'data-task': t.id,
          'data-state': t.state,
          'data-history': t.history.join(' '),
          tabindex: 0,
        },
        el('header', {}, el('strong', {}, t.id), el('span', { class: 'state' }, t.state)),
        el('div', { class: 'agent', title: t.agent }, agentText(t)),
        bar,
        el('div', { class: 'meta' }, `${Math.round(fraction * 100)} % · ${ms(elapsed)}`),
      )
      if (t.description) card.append(el('div', { class: 'description' }, t.description))
      if (t.tags) card.append(el('div', { class: 'tags' }, ...t.tags.map((tag) => el('span', { class: 'tag' }, tag))))
      if (t.added) card.append(el('div', { class: 'added' }, t.parent ? `added by ${t.parent}` : 'added at run time'))
      if (t.message) card.append(el('div', { class: 'message' }, t.message))
      if (t.error) card.append(el('div', { class: 'error' }, `${t.error.code}: ${t.error.message}`))
      if (t.workspace) {
        const w = t.workspace
        card.append(el('div', { class: `workspace merge-${w.merge}` }, workspaceText(w)))
      }
      if (t.worker) card.append(el('div', { class: 'worker' }, `ran on ${t.worker}`))
      if (t.repairs) card.append(el('div', { class: 'repairs' }, repairsText(t.repairs)))
      if (t.approval && t.approval.state !== 'awaiting') card.append(el('div', { class: 'approval' }, approvalText(t.approval)))
      if (t.output !== undefined) card.append(el('pre', { class: 'output' }, outputText(t.output)))
      if (t.logs.length > 0) card.append(el('ul', { class: 'logs' }, ...t.logs.slice(-CARD_LOGS).map((line) => el('li', {}, line))))
      card.hidden = !matches(t)
      card.addEventListener('click', () => select(t.id))
      card.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') select(t.id)
      })
      return card
    })
    $('cards').replaceChildren(...cards)
  }

  /** Whether a task passes the filter: every word is in its id, agent, state or tags. */
  function matches(t) {
    const words = filter.toLowerCase().split(/\s+/).filter(Boolean)
    const text = `${t.id} ${t.agent} ${t.state} ${(t.tags || []).join(' ')}`.toLowerCase()
    return words.every((w) => text.includes(w))
  }

  function select(taskId) {
    selectedTask = taskId
    render()
    $('detail').scrollIntoView({ block: 'nearest' })
  }

  /**
   * The selected task in full: state, error, output, its whole log and, for a worktree task,
   * its diff. Live, the log and the diff come from the server; in a report, from the data.
   */
  function renderDetail(run) {
    const box = $('detail')
    const t = selectedTask === undefined ? undefined : run.tasks.find((x) => x.id === selectedTask)
    box.hidden = t === undefined
    if (!t) return box.replaceChildren()
    const key = `${run.runId}\u0000${t.id}\u0000${t.state}\u0000${t.attempt}`
    if (!current.static && fetched.key !== key) {
      fetched = { key, log: undefined, diff: undefined }
      const query = `run=${encodeURIComponent(run.runId)}&task=${encodeURIComponent(t.id)}`
      const load = (what) =>
        fetch(`api/task-${what}?${query}`)
          .then((r) => r.text())
          .then((text) => {
            if (fetched.key !== key) return
            fetched[what] = text
            render()
          })
          .catch(() => {})
      void load('log')
      if (t.workspace) void load('diff')
    }
    const close = el('button', { type: 'button', id: 'detail-close' }, 'close')
    close.addEventListener('click', () => {
      selectedTask = undefined
      render()
    })
    const facts = [
      ['state', t.state],
      ['agent', t.agent],
      ['attempts', String(t.attempt)],
      ['history', t.history.join(' → ')],
      ['busy', ms(t.busyMs)],
      ...(t.worker ? [['worker', t.worker]] : []),
      ...(t.parent ? [['added by', t.parent]] : []),
      ...(t.description ? [['description', t.description]] : []),
      ...(t.cached ? [['cached', 'output taken from the task cache: not run']] : []),
      ...(t.approval ? [['approval', approvalText(t.approval)]] : []),
      ...(t.repairs ? [['repairs', repairsText(t.repairs)]] : []),
    ]
    const parts = [
      el('header', {}, el('h2', {}, `task ${t.id}`), close),
      el('dl', {}, ...facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)])),
    ]
    if (t.error) parts.push(el('h3', {}, 'error'), el('pre', { id: 'detail-error' }, `${t.error.code}: ${t.error.message}`))
    if (t.output !== undefined) {
      const output = typeof t.output === 'string' ? t.output : JSON.stringify(t.output, null, 2)
      parts.push(el('h3', {}, 'output'), el('pre', { id: 'detail-output' }, output))
    }
    if (t.repairs) {
      const items = t.repairs.map((r) =>
        el(
          'li',
          { 'data-reason': r.reason, 'data-attempt': r.attempt },
          el('div', { class: 'repair-head' }, `repair ${r.number} · attempt ${r.attempt} · ${r.reason}`),
          el('pre', { class: 'repair-detail' }, r.detail === '' ? '(no detail)' : r.detail),
        ),
      )
      parts.push(el('h3', {}, `repairs (${t.repairs.length})`), el('ol', { id: 'detail-repairs' }, ...items))
    }
    const own = (shownMessages(run)?.messages || []).filter((m) => m.from === t.id || m.to === t.id)
    if (own.length > 0) parts.push(el('h3', {}, 'messages'), el('div', { id: 'detail-messages' }, ...own.map(messageRow)))
    const log = current.static ? t.logs.join('\n') : (fetched.log ?? t.logs.join('\n'))
    parts.push(el('h3', {}, 'log'), el('pre', { id: 'detail-log' }, log === '' ? '(nothing logged)' : log))
    if (t.workspace) {
      const w = t.workspace
      const summary = workspaceText(w)
      const diff = current.static
        ? `${summary}\n(the diff is shown by the live dashboard while the branch exists)`
        : (fetched.diff ?? `${summary}\n(loading the diff…)`)
      parts.push(el('h3', {}, 'diff'), el('pre', { id: 'detail-diff' }, diff))
    }
    box.replaceChildren(...parts)
  }

  /**
   * Tasks awaiting approval: what they did (diff, output, log tail, from /api/approval) and
   * Approve / Reject buttons. Live only: a report has no controls.
   */
  function renderApprovals(run) {
    const box = $('approvals')
    const awaiting = current.static ? [] : run.tasks.filter((t) => t.state === 'AWAITING_APPROVAL')
    const keyOf = (t) => `${run.runId}\u0000${t.id}\u0000${t.attempt}`
    const shown = awaiting.map((t) => `${keyOf(t)}\u0000${reviews.get(keyOf(t)) ? 1 : 0}`).join('\u0001')
    if (shown === approvalsShown) return
    approvalsShown = shown
    box.hidden = awaiting.length === 0
    if (awaiting.length === 0) return box.replaceChildren()
    const parts = [el('h2', {}, `awaiting approval (${awaiting.length})`)]
    for (const t of awaiting) {
      const key = keyOf(t)
      if (!reviews.has(key)) {
        reviews.set(key, undefined)
        const query = `run=${encodeURIComponent(run.runId)}&task=${encodeURIComponent(t.id)}`
        fetch(`api/approval?${query}`)
          .then((r) => (r.ok ? r.json() : undefined))
          .then((body) => {
            reviews.set(key, body)
            render()
          })
          .catch(() => {})
      }
      const review = reviews.get(key)
      const label = `reason for rejecting ${t.id}`
      const reason = el('input', { type: 'text', placeholder: 'reason (for reject)', 'aria-label': label, maxlength: 2000 })
      const message = el('span', { role: 'status', class: 'approval-message' })
      const approve = el('button', { type: 'button', class: 'approve', 'data-task': t.id }, 'approve')
      const reject = el('button', { type: 'button', class: 'reject', 'data-task': t.id }, 'reject')
      approve.addEventListener('click', () => void decide(run.runId, t.id, 'approve', undefined, message))
      reject.addEventListener('click', () => void decide(run.runId, t.id, 'reject', reason.value, message))
      const before = review ? ` before ${review.before}` : ''
      parts.push(el('h3', {}, `task ${t.id} awaits approval${before}`), el('div', {}, approve, ' ', reason, ' ', reject, ' ', message))
      if (review === undefined) parts.push(el('pre', {}, '(loading what it did…)'))
      else {
        parts.push(el('h4', {}, 'diff'), el('pre', { class: 'approval-diff' }, review.diff))
        if (review.output !== undefined) parts.push(el('h4', {}, 'output'), el('pre', { class: 'approval-output' }, review.output))
        parts.push(el('h4', {}, 'log (tail)'), el('pre', { class: 'approval-log' }, review.logTail))
      }
    }
    box.replaceChildren(...parts)
  }

  async function decide(runId, task, decision, reason, message) {
    const response = await fetch(`api/runs/${encodeURIComponent(runId)}/approval`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ task, decision, ...(reason ? { reason } : {}) }),
    })
    const body = await response.json()
    message.textContent = response.ok ? `${decision === 'approve' ? 'approved' : 'rejected'}` : visible(`${body.code}: ${body.message}`)
    message.dataset.ok = String(response.ok)
  }

  function renderPauses(run) {
    const box = $('pauses')
    const pauses = (run.pauses || []).filter((p) => run.status === 'running' && p.until > run.at)
    box.hidden = pauses.length === 0
    box.replaceChildren(
      ...pauses.map((p) => {
        const resumes = `resumes in ${ms(p.until - run.at)} (at ${new Date(p.until).toLocaleTimeString()})`
        const text = `rate limit: ${p.limits.join(', ')} paused — ${resumes}`
        return el('div', { class: 'pill paused', 'data-limits': p.limits.join(' ') }, text)
      }),
    )
  }

  function renderNotes(run) {
    const box = $('notes')
    const notes = run.notes || []
    box.hidden = notes.length === 0
    box.replaceChildren(
      el('h2', {}, 'scratchpad'),
      ...notes.map((n) => {
        const text = n.text.length > 300 ? `${n.text.slice(0, 299)}…` : n.text
        return el('div', { class: 'note' }, `${new Date(n.at).toLocaleTimeString()} ${n.taskId}: ${text}`)
      }),
    )
  }

  /** The run's messages: in a report, from the data; live, from /api/messages (again every few seconds while it runs). */
  function shownMessages(run) {
    if (current.static) return run.messages
    const key = `${run.runId}\u0000${run.status}`
    const now = Date.now()
    if (messages.key !== key || (run.status === 'running' && now - messages.at > MESSAGES_EVERY_MS)) {
      const body = messages.key.split('\u0000')[0] === run.runId ? messages.body : undefined
      messages = { key, at: now, body }
      fetch(`api/messages?run=${encodeURIComponent(run.runId)}`)
        .then((r) => (r.ok ? r.json() : undefined))
        .then((answer) => {
          if (messages.key !== key || answer === undefined) return
          messages.body = answer
          render()
        })
        .catch(() => {})
    }
    return messages.body
  }

  function messageRow(m) {
    return el(
      'div',
      { class: 'msg' },
      el('span', { class: 'msg-at' }, new Date(m.at).toLocaleTimeString()),
      ' ',
      el('span', { class: 'msg-from' }, m.from),
      ' → ',
      el('span', { class: 'msg-to' }, m.to),
      ': ',
      el('span', { class: 'msg-text' }, m.text),
    )
  }

  function renderMessages(run) {
    const box = $('messages')
    if (!box) return
    const shown = shownMessages(run)
    const list = shown ? shown.messages : []
    box.hidden = list.length === 0
    if (list.length === 0) return box.replaceChildren()
    const omitted = shown.omitted === true ? 'earlier messages not shown' : shown.omitted > 0 ? `${shown.omitted} earlier not shown` : ''
    const more = omitted ? ` · ${omitted}: troupe logs ${run.runId} --messages has them all` : ''
    box.replaceChildren(el('h2', {}, `messages (${list.length}${more})`), ...list.map(messageRow))
  }

  function approvalText(a) {
    if (a.state === 'awaiting') return `awaiting approval before ${a.before}`
    return `${a.state}${a.by ? ` by ${a.by}` : ''} before ${a.before}${a.reason ? `: ${a.reason}` : ''}`
  }

  function repairsText(repairs) {
    const reasons = [...new Set(repairs.map((r) => r.reason))].join(', ')
    return `repaired ${repairs.length}× (${reasons})`
  }

  function renderLegend() {
    const items = STATES.map((s) => el('span', { class: `legend-item ${s}` }, el('span', { class: 'swatch' }), s.toLowerCase()))
    items.push(el('span', { class: 'legend-item FAILED attempt-failed' }, el('span', { class: 'swatch' }), 'failed attempt (retried)'))
    $('legend').replaceChildren(...items)
  }

  function agentText(t) {
    const marks = `${t.reused ? ' · reused' : ''}${t.cached ? ' · cached' : ''}`
    return `${t.agent.split('/').pop()}${t.attempt > 1 ? ` · attempt ${t.attempt}` : ''}${marks}`
  }

  function workspaceText(w) {
    return `${w.branch} · ${w.filesChanged} files +${w.insertions} −${w.deletions} · ${w.merge}`
  }

  function outputText(output) {
    const text = typeof output === 'string' ? output : JSON.stringify(output, null, 1)
    return text.length > 400 ? `${text.slice(0, 399)}…` : text
  }

  function renderTimeline(run) {
    const bars = []
    for (const t of run.tasks) {
      for (const i of t.intervals) {
        bars.push({ task: t, start: i.start, end: i.end ?? run.at, slot: i.slot, attempt: i.attempt, failed: i.failed === true })
      }
    }
    const box = $('timeline')
    if (bars.length === 0) return box.replaceChildren(el('p', { class: 'empty' }, 'no task has started yet'))
    const t0 = Math.min(...bars.map((b) => b.start))
    const t1 = Math.max(run.at, ...bars.map((b) => b.end))
    const span = Math.max(1, t1 - t0)
    const rows = Math.max(run.slots, ...bars.map((b) => b.slot + 1))
    const left = 64
    const width = 900
    const rowH = 26
    const height = rows * rowH + 24
    const s = svg('svg', { viewBox: `0 0 ${left + width + 8} ${height}`, class: 'timeline', role: 'img', 'aria-label': 'timeline' })
    for (let r = 0; r < rows; r++) s.append(svg('text', { x: 4, y: r * rowH + 17, class: 'axis' }, `slot ${r + 1}`))
    for (let k = 0; k <= 4; k++) {
      const x = left + (k / 4) * width
      s.append(svg('line', { x1: x, x2: x, y1: 0, y2: rows * rowH, class: 'grid' }))
      s.append(svg('text', { x: Math.min(x, left + width - 40), y: rows * rowH + 16, class: 'axis' }, ms((k / 4) * span)))
    }
    for (const b of bars) {
      const x = left + ((b.start - t0) / span) * width
      const w = Math.max(2, ((b.end - b.start) / span) * width)
      const kind = b.failed ? 'FAILED attempt-failed' : b.task.state
      const g = svg('g', { class: `bar-group ${kind}`, 'data-task': b.task.id, 'data-attempt': b.attempt })
      g.append(svg('title', {}, `${b.task.id} (${b.task.agent}) attempt ${b.attempt}${b.failed ? ' failed' : ''}: ${ms(b.end - b.start)}`))
      g.append(svg('rect', { x, y: b.slot * rowH + 3, width: w, height: rowH - 6, rx: 3 }))
      if (w > 30) g.append(svg('text', { x: x + 4, y: b.slot * rowH + 17, class: 'bar-label' }, b.task.id))
      g.addEventListener('click', () => select(b.task.id))
      s.append(g)
    }
    box.replaceChildren(s)
  }

  function renderGraph(run) {
    const box = $('graph')
    if (!run.tasks.some((t) => t.deps.length > 0) && current.static) {
      return box.replaceChildren(el('p', { class: 'empty' }, 'no dependencies recorded'))
    }
    const byLevel = []
    for (const t of run.tasks) (byLevel[t.level] ||= []).push(t)
    const colW = 170
    const rowH = 40
    const pos = new Map()
    byLevel.forEach((tasks, level) => tasks.forEach((t, row) => pos.set(t.id, { x: 10 + level * colW, y: 10 + row * rowH })))
    const rows = Math.max(1, ...byLevel.map((l) => (l ? l.length : 0)))
    const w = byLevel.length * colW + 20
    const h = rows * rowH + 20
    const s = svg('svg', { width: w, height: h, viewBox: `0 0 ${w} ${h}`, class: 'graph', role: 'img', 'aria-label': 'dependency graph' })
    for (const t of run.tasks) {
      const to = pos.get(t.id)
      for (const d of t.deps) {
        const from = pos.get(d)
        if (from) s.append(svg('line', { x1: from.x + 130, y1: from.y + 14, x2: to.x, y2: to.y + 14, class: 'edge' }))
      }
    }
    for (const t of run.tasks) {
      const p = pos.get(t.id)
      const g = svg('g', { class: `node ${t.state}`, 'data-task': t.id })
      g.append(svg('rect', { x: p.x, y: p.y, width: 130, height: 28, rx: 5 }))
      g.append(svg('text', { x: p.x + 6, y: p.y + 18 }, t.id.length > 18 ? `${t.id.slice(0, 17)}…` : t.id))
      g.append(svg('title', {}, `${t.id}: ${t.state}`))
      g.addEventListener('click', () => select(t.id))
      s.append(g)
    }
    box.replaceChildren(s)
  }

  function renderAgents(run) {
    const rows = run.agents.map((a) =>
      el(
        'tr',
        { 'data-agent': a.agent },
        ...[a.agent, String(a.tasks), ms(a.busyMs), `${(a.utilisation * 100).toFixed(0)} %`].map((cell) => el('td', {}, cell)),
      ),
    )
    const head = el('tr', {}, el('th', {}, 'agent'), el('th', {}, 'tasks'), el('th', {}, 'busy'), el('th', {}, 'share of slots'))
    $('agents').replaceChildren(el('table', {}, el('thead', {}, head), el('tbody', {}, ...rows)))
  }

  async function applyMaxParallel() {
    const run = pick()
    if (!run) return
    const value = Number($('max-parallel-input').value)
    const response = await fetch(`api/runs/${encodeURIComponent(run.runId)}/max-parallel`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ maxParallel: value }),
    })
    const body = await response.json()
    $('control-message').textContent = response.ok ? `maxParallel set to ${body.maxParallel}` : visible(`${body.code}: ${body.message}`)
    $('control-message').dataset.ok = String(response.ok)
  }

  renderLegend()
  $('task-filter').addEventListener('input', (e) => {
    filter = e.target.value
    render()
  })
  $('run-select').addEventListener('change', (e) => {
    selectedRun = e.target.value
    render()
  })
  // A report has no controls.
  if ($('max-parallel-apply')) $('max-parallel-apply').addEventListener('click', () => void applyMaxParallel())

  const embedded = document.getElementById('troupe-data')
  if (embedded) {
    current = { ...JSON.parse(embedded.textContent), static: true }
    $('connection').textContent = 'report'
    render()
  } else {
    const source = new EventSource('events')
    source.addEventListener('snapshot', (e) => {
      current = JSON.parse(e.data)
      render()
    })
    // A delta carries run figures and only the tasks that changed: merge them by id.
    source.addEventListener('delta', (e) => {
      const delta = JSON.parse(e.data)
      const before = new Map(current.runs.map((r) => [r.runId, r]))
      const runs = delta.runs.map((r) => {
        const old = before.get(r.runId)
        if (!old) return r
        const changed = new Map(r.tasks.map((t) => [t.id, t]))
        // Tasks added at run time arrive in a delta first: append them.
        const known = new Set(old.tasks.map((t) => t.id))
        return { ...r, tasks: [...old.tasks.map((t) => changed.get(t.id) || t), ...r.tasks.filter((t) => !known.has(t.id))] }
      })
      current = { runs: runs.filter((r) => delta.runIds.includes(r.runId)), governor: delta.governor }
      render()
    })
    // The server ends the stream once it has sent the final state: stay on it.
    source.addEventListener('end', () => {
      source.close()
      stream = 'ended'
      $('connection').textContent = 'run ended'
      $('connection').dataset.state = 'ended'
    })
    source.addEventListener('open', () => {
      stream = 'open'
      $('connection').dataset.state = 'open'
      const run = pick()
      $('connection').textContent = run && run.status !== 'running' ? 'run ended' : 'live'
    })
    source.addEventListener('error', () => {
      if (stream === 'open') stream = undefined
      if ($('connection').dataset.state !== 'ended') $('connection').textContent = 'disconnected'
    })
  }
})()
