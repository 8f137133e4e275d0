import { ScriptedServer, type Provider, type RecordedRequest, type Script } from './scripted-server.ts'

export type { Fault, RecordedRequest } from './scripted-server.ts'

/** A function call the model makes (`functionCall` part). */
export interface GeminiCall {
  readonly name: string
  readonly args: Record<string, unknown>
}

/** One scripted model turn: text (sent in `chunks` pieces) and/or function calls, with usage and model version. */
export interface GeminiReply {
  readonly text?: string
  /** Split the text into this many SSE chunks (the CLI gets them as `delta` messages). @default 1 */
  readonly chunks?: number
  readonly calls?: readonly GeminiCall[]
  readonly usage?: { readonly input: number; readonly cached?: number; readonly output: number }
  readonly model?: string
}

const DEFAULT_USAGE = { input: 100, cached: 0, output: 10 }

/** What a utility request (Gemini CLI's model router, next-speaker check) gets: a JSON answer with a low score. */
const UTILITY_TEXT = JSON.stringify({ complexity_reasoning: 'scripted', complexity_score: 10, reasoning: 'scripted', next_speaker: 'user' })

/**
 * The Gemini API (`POST /v1beta/models/M:streamGenerateContent?alt=sse`) as server-sent
 * events: one `data:` frame per chunk, each a GenerateContentResponse (`candidates[0].content.parts`
 * with `text` or `functionCall`); the last carries `finishReason: STOP` and `usageMetadata`.
 * Other calls (`:generateContent` for routing, `:countTokens`) are utility requests.
 */
const gemini: Provider<GeminiReply> = {
  isTurn: (method, path) => method === 'POST' && path.includes(':streamGenerateContent'),
  events(reply, turn) {
    const model = reply.model ?? 'gemini-scripted'
    const frame = (parts: unknown[], last: boolean) => {
      const usage = reply.usage ?? DEFAULT_USAGE
      const response = {
        candidates: [{ content: { role: 'model', parts }, index: 0, ...(last ? { finishReason: 'STOP' } : {}) }],
        ...(last
          ? {
              usageMetadata: {
                promptTokenCount: usage.input,
                cachedContentTokenCount: usage.cached ?? 0,
                candidatesTokenCount: usage.output,
                totalTokenCount: usage.input + usage.output,
              },
            }
          : {}),
        modelVersion: model,
        responseId: `resp_${turn}`,
      }
      return `data: ${JSON.stringify(response)}\r\n\r\n`
    }
    const frames: string[] = []
    const text = reply.text ?? ''
    const chunks = Math.max(1, reply.chunks ?? 1)
    const size = Math.ceil(text.length / chunks)
    const pieces =
      text.length === 0 ? [] : Array.from({ length: Math.ceil(text.length / size) }, (_, i) => text.slice(i * size, (i + 1) * size))
    const calls = (reply.calls ?? []).map((call) => ({ functionCall: { name: call.name, args: call.args } }))
    pieces.forEach((piece, i) => frames.push(frame([{ text: piece }], i === pieces.length - 1 && calls.length === 0)))
    if (calls.length > 0 || frames.length === 0) frames.push(frame(calls.length > 0 ? calls : [{ text: '' }], true))
    return frames
  },
  errorBody: (status, message, retryAfterSeconds) => ({
    error: {
      code: status,
      message,
      status: status === 429 ? 'RESOURCE_EXHAUSTED' : status === 503 ? 'UNAVAILABLE' : 'INTERNAL',
      ...(retryAfterSeconds === undefined
        ? {}
        : { details: [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${retryAfterSeconds}s` }] }),
    },
  }),
  utility(request) {
    if (request.path.includes(':countTokens')) return { status: 200, body: { totalTokens: 10 } }
    const body = {
      candidates: [{ content: { role: 'model', parts: [{ text: UTILITY_TEXT }] }, finishReason: 'STOP', index: 0 }],
      usageMetadata: { promptTokenCount: 1, candidatesTokenCount: 1, totalTokenCount: 2 },
      modelVersion: 'gemini-utility',
    }
    return { status: 200, body }
  },
}

/** A scripted Gemini API server; `baseUrl` is what GOOGLE_GEMINI_BASE_URL points at. */
export class GeminiServer extends ScriptedServer<GeminiReply> {
  get baseUrl(): string {
    return this.origin
  }
}

/** Starts a scripted Gemini server; after the script, every turn answers "done". */
export async function startGeminiServer(script: Script<GeminiReply>): Promise<GeminiServer> {
  return new GeminiServer(gemini, script, { text: 'done' }).listen()
}

/** The parts of a turn request's `contents`, flattened. */
export function requestParts(request: RecordedRequest): Record<string, unknown>[] {
  const contents = Array.isArray(request.body?.contents) ? (request.body.contents as { parts?: unknown }[]) : []
  return contents.flatMap((content) => (Array.isArray(content.parts) ? (content.parts as Record<string, unknown>[]) : []))
}

/** The function responses a turn's request sends back, by function name (the last of each). */
export function functionResponses(request: RecordedRequest): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const part of requestParts(request)) {
    const response = part.functionResponse as { name?: unknown; response?: unknown } | undefined
    if (response !== undefined && typeof response.name === 'string') out[response.name] = response.response
  }
  return out
}

/** The function declarations a turn's request offers, by name. */
export function declaredFunctions(request: RecordedRequest): string[] {
  const tools = Array.isArray(request.body?.tools) ? (request.body.tools as { functionDeclarations?: { name?: unknown }[] }[]) : []
  return tools.flatMap((tool) => (tool.functionDeclarations ?? []).map((declaration) => String(declaration.name)))
}
