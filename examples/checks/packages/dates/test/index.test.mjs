import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isoDay } from '../src/index.js'

test('isoDay keeps the UTC date', () => assert.equal(isoDay(new Date(Date.UTC(2026, 10, 27, 23))), '2026-11-27'))
