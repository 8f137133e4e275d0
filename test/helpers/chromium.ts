import { existsSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'

/** Debian's `chromium` package (`apt-get install -y chromium`). */
export const CHROMIUM_PATH = '/usr/bin/chromium'

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/** A browser suite's `beforeAll` timeout: a launch on a loaded 2-core machine can take its time. */
export const LAUNCH_HOOK_TIMEOUT_MS = 90_000

/**
 * Launches the system Chromium headless. Throws (failing the test, never skipping it) when
 * Chromium is not installed, naming the package to install. A launch that has not connected
 * within 25 s is tried once more (seen once under CI load: a launch that never answered).
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`Chromium is required for the browser tests and was not found at ${CHROMIUM_PATH}. Install it with: apt-get update && apt-get install -y chromium`)
  }
  const launch = () => chromium.launch({ executablePath: CHROMIUM_PATH, args: ARGS, headless: true, timeout: 25_000 })
  try {
    return await launch()
  } catch (error) {
    if ((error as Error).name !== 'TimeoutError') throw error
    return launch()
  }
}
