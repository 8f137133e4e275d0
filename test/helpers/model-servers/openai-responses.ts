import { ScriptedServer, type Provider, type RecordedRequest, type Script } from './scripted-server.ts'

export type { Fault, RecordedRequest } from './scripted-server.ts'

/** A function call the model makes: a tool by name (`namespace` for tools Codex groups, e.g. MCP servers'). */
export interface ResponsesCall {
  readonly name: string
  readonly arguments: unknown
  readonly namespace?: string
}

/** One scripted model turn: text and/or function calls, with the usage and model it reports. */
export interface ResponsesReply {
  readonly text?: string
  readonly calls?: readonly ResponsesCall[]
  readonly usage?: { readonly input: number; readonly cached?: number; readonly output: number }
  readonly model?: string
}

const DEFAULT_USAGE = { input: 100, cached: 0, output: 10 }

/**
 * OpenAI Responses API (`POST …/responses`, `stream: true`) as server-sent events:
 * `response.created`, per output item `response.output_item.added`, its deltas
 * (`response.output_text.delta` / `response.function_call_arguments.delta`) and
 * `response.output_item.done`, then `response.completed` with `usage`.
 */
const responses: Provider<ResponsesReply> = {
  isTurn: (method, path) => method === 'POST' && /\/responses(\?|$)/.test(path),
  events(reply, turn) {
    const id = `resp_${turn}`
    const model = reply.model ?? 'scripted-model'
    const frame = (event: Record<string, unknown>) => `event: ${String(event.type)}\ndata: ${JSON.stringify(event)}\n\n`
    const frames = [frame({ type: 'response.created', response: { id, object: 'response', status: 'in_progress', model, output: [] } })]
    const output: Record<string, unknown>[] = []
    if (reply.text !== undefined) {
      const index = output.length
      const item = {
        type: 'message',
        id: `msg_${turn}_${index}`,
        role: 'assistant',
        status: 'completed',
        content: [{ type: 'output_text', text: reply.text, annotations: [] }],
      }
      frames.push(frame({ type: 'response.output_item.added', output_index: index, item: { ...item, status: 'in_progress', content: [] } }))
      frames.push(frame({ type: 'response.output_text.delta', item_id: item.id, output_index: index, content_index: 0, delta: reply.text }))
      frames.push(frame({ type: 'response.output_text.done', item_id: item.id, output_index: index, content_index: 0, text: reply.text }))
      frames.push(frame({ type: 'response.output_item.done', output_index: index, item }))
      output.push(item)
    }
    for (const [n, call] of (reply.calls ?? []).entries()) {
      const index = output.length
      const args = JSON.stringify(call.arguments)
      const item = {
        type: 'function_call',
        id: `fc_${turn}_${n}`,
        call_id: `call_${turn}_${n}`,
        name: call.name,
        ...(call.namespace === undefined ? {} : { namespace: call.namespace }),
        arguments: args,
        status: 'completed',
      }
      frames.push(
        frame({ type: 'response.output_item.added', output_index: index, item: { ...item, arguments: '', status: 'in_progress' } }),
      )
      frames.push(frame({ type: 'response.function_call_arguments.delta', item_id: item.id, output_index: index, delta: args }))
      frames.push(frame({ type: 'response.function_call_arguments.done', item_id: item.id, output_index: index, arguments: args }))
      frames.push(frame({ type: 'response.output_item.done', output_index: index, item }))
      output.push(item)
    }
    const usage = reply.usage ?? DEFAULT_USAGE
    const total = usage.input + usage.output
    const completed = {
      id,
      object: 'response',
      status: 'completed',
      model,
      output,
      usage: {
        input_tokens: usage.input,
        input_tokens_details: { cached_tokens: usage.cached ?? 0 },
        output_tokens: usage.output,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: total,
      },
    }
    frames.push(frame({ type: 'response.completed', response: completed }))
    return frames
  },
  errorBody: (status, message) => ({
    error: {
      message,
      type: status === 429 ? 'rate_limit_exceeded' : 'server_error',
      code: status === 429 ? 'rate_limit_exceeded' : null,
      param: null,
    },
  }),
  utility: () => ({ status: 404, body: { error: { message: 'not scripted', type: 'invalid_request_error' } } }),
}

/** A scripted OpenAI Responses server; `baseUrl` is the `…/v1` a provider entry points at. */
export class ResponsesServer extends ScriptedServer<ResponsesReply> {
  get baseUrl(): string {
    return `${this.origin}/v1`
  }
}

/** Starts a scripted Responses server; after the script, every turn answers "done". */
export async function startResponsesServer(script: Script<ResponsesReply>): Promise<ResponsesServer> {
  return new ResponsesServer(responses, script, { text: 'done' }).listen()
}

/** The `input` items of a turn's request. */
export function inputItems(request: RecordedRequest): Record<string, unknown>[] {
  const input = request.body?.input
  return Array.isArray(input) ? (input as Record<string, unknown>[]) : []
}

/** The outputs of function calls a turn's request sends back, by call id. */
export function callOutputs(request: RecordedRequest): Record<string, string> {
  const out: Record<string, string> = {}
  for (const item of inputItems(request)) {
    if ((item.type === 'function_call_output' || item.type === 'custom_tool_call_output') && typeof item.call_id === 'string') {
      out[item.call_id] = typeof item.output === 'string' ? item.output : JSON.stringify(item.output)
    }
  }
  return out
}

/** The tools a turn's request offers, flattened: `name`, or `namespace` + `name` for grouped tools. */
export function offeredTools(request: RecordedRequest): { name: string; namespace?: string }[] {
  const tools = Array.isArray(request.body?.tools) ? (request.body.tools as Record<string, unknown>[]) : []
  const out: { name: string; namespace?: string }[] = []
  for (const tool of tools) {
    if (tool.type === 'namespace' && Array.isArray(tool.tools)) {
      for (const inner of tool.tools as Record<string, unknown>[]) out.push({ name: String(inner.name), namespace: String(tool.name) })
    } else if (typeof tool.name === 'string') out.push({ name: tool.name })
  }
  return out
}
