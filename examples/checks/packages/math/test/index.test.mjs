import assert from 'node:assert/strict'
import { test } from 'node:test'
import { mean } from '../src/index.js'

test('mean of 1..4 is 2.5', () => assert.equal(mean([1, 2, 3, 4]), 2.5))
test('mean of nothing throws', () => assert.throws(() => mean([]), RangeError))
