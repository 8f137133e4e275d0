/**
 * Static metrics of one JavaScript/TypeScript source file, computed from the TypeScript
 * compiler's syntax tree and token stream: line counts, functions with their cyclomatic
 * complexity and length, classes, identifiers, imports, Halstead measures and a
 * maintainability index. Pure: text in, numbers out.
 */
import ts from 'typescript'

const { SyntaxKind } = ts

/** Node kinds that start a function body of their own. */
const FUNCTION_KINDS = new Set([
  SyntaxKind.FunctionDeclaration,
  SyntaxKind.FunctionExpression,
  SyntaxKind.ArrowFunction,
  SyntaxKind.MethodDeclaration,
  SyntaxKind.Constructor,
  SyntaxKind.GetAccessor,
  SyntaxKind.SetAccessor,
])

/** Node kinds that add one independent path (McCabe): branches and loops. */
const DECISION_KINDS = new Set([
  SyntaxKind.IfStatement,
  SyntaxKind.ConditionalExpression,
  SyntaxKind.CaseClause,
  SyntaxKind.ForStatement,
  SyntaxKind.ForInStatement,
  SyntaxKind.ForOfStatement,
  SyntaxKind.WhileStatement,
  SyntaxKind.DoStatement,
  SyntaxKind.CatchClause,
])

/** Short-circuit operators also add a path. */
const DECISION_OPERATORS = new Set([
  SyntaxKind.AmpersandAmpersandToken,
  SyntaxKind.BarBarToken,
  SyntaxKind.QuestionQuestionToken,
  SyntaxKind.AmpersandAmpersandEqualsToken,
  SyntaxKind.BarBarEqualsToken,
  SyntaxKind.QuestionQuestionEqualsToken,
])

const OPERAND_KINDS = new Set([
  SyntaxKind.Identifier,
  SyntaxKind.PrivateIdentifier,
  SyntaxKind.NumericLiteral,
  SyntaxKind.BigIntLiteral,
  SyntaxKind.StringLiteral,
  SyntaxKind.RegularExpressionLiteral,
  SyntaxKind.NoSubstitutionTemplateLiteral,
  SyntaxKind.TemplateHead,
  SyntaxKind.TemplateMiddle,
  SyntaxKind.TemplateTail,
  SyntaxKind.TrueKeyword,
  SyntaxKind.FalseKeyword,
  SyntaxKind.NullKeyword,
])

/**
 * The file's tokens in order, and the lines that hold one. A token's `norm` erases names and
 * literal values (`id`, `str`, `num`, …), so two functions that differ only in naming
 * compare equal.
 */
function tokenize(sourceFile) {
  const tokens = []
  const codeLines = new Set()
  // The tree's leaves are exactly the parser's tokens, with regexes and templates scanned in
  // context (a bare scanner cannot tell `/` from the start of a regex).
  const visit = (node) => {
    if (node.kind >= SyntaxKind.FirstJSDocNode && node.kind <= SyntaxKind.LastJSDocNode) return
    const children = node.getChildren(sourceFile)
    if (children.length > 0) {
      for (const child of children) visit(child)
      return
    }
    if (node.kind === SyntaxKind.EndOfFileToken || node.kind === SyntaxKind.SyntaxList) return
    const start = node.getStart(sourceFile)
    // Zero-width leaves (the hole in `[a, , b]`, nodes the parser invented to recover) are not text.
    if (start === node.getEnd()) return
    const kind = node.kind
    const operand = OPERAND_KINDS.has(kind)
    tokens.push({ kind, start, operand, value: operand ? node.getText(sourceFile) : tokenText(kind), norm: normalise(kind) })
    codeLines.add(sourceFile.getLineAndCharacterOfPosition(start).line)
  }
  visit(sourceFile)
  return { tokens, codeLines }
}

function normalise(kind) {
  switch (kind) {
    case SyntaxKind.Identifier:
    case SyntaxKind.PrivateIdentifier:
      return 'id'
    case SyntaxKind.StringLiteral:
    case SyntaxKind.NoSubstitutionTemplateLiteral:
    case SyntaxKind.TemplateHead:
    case SyntaxKind.TemplateMiddle:
    case SyntaxKind.TemplateTail:
      return 'str'
    case SyntaxKind.NumericLiteral:
    case SyntaxKind.BigIntLiteral:
      return 'num'
    default:
      return tokenText(kind)
  }
}

/** `if`, `=>`, `{` … for keywords and punctuation; the kind's name otherwise. */
function tokenText(kind) {
  return ts.tokenToString(kind) ?? SyntaxKind[kind]
}

/** Halstead length, vocabulary, volume, difficulty and effort of a token range. */
export function halstead(tokens) {
  const operators = new Map()
  const operands = new Map()
  for (const token of tokens) {
    const bag = token.operand ? operands : operators
    bag.set(token.value, (bag.get(token.value) ?? 0) + 1)
  }
  const n1 = operators.size
  const n2 = operands.size
  let N1 = 0
  let N2 = 0
  for (const count of operators.values()) N1 += count
  for (const count of operands.values()) N2 += count
  const vocabulary = n1 + n2
  const length = N1 + N2
  const volume = vocabulary > 0 ? length * Math.log2(vocabulary) : 0
  const difficulty = n2 > 0 ? (n1 / 2) * (N2 / n2) : 0
  return { vocabulary, length, volume: round(volume), difficulty: round(difficulty), effort: round(volume * difficulty) }
}

/**
 * Maintainability index (the 0-100 variant used by Visual Studio) of one function, from its
 * Halstead volume, cyclomatic complexity and lines of code.
 */
export function maintainabilityIndex(volume, complexity, lines) {
  const raw = 171 - 5.2 * Math.log(Math.max(volume, 1)) - 0.23 * complexity - 16.2 * Math.log(Math.max(lines, 1))
  return round(Math.max(0, (raw * 100) / 171))
}

/** The name a reader would use for a function node, or `<anonymous>`. */
function functionName(node, sourceFile) {
  if (node.kind === SyntaxKind.Constructor) return 'constructor'
  if (node.name) return node.name.getText(sourceFile)
  const parent = node.parent
  if (parent && (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)) && parent.name) {
    return parent.name.getText(sourceFile)
  }
  if (parent && ts.isBinaryExpression(parent) && parent.operatorToken.kind === SyntaxKind.EqualsToken) {
    return parent.left.getText(sourceFile).slice(0, 60)
  }
  if (parent && ts.isCallExpression(parent)) {
    return `<callback of ${parent.expression.getText(sourceFile).slice(0, 40)}>`
  }
  if (parent && ts.isNewExpression(parent)) {
    return `<callback of new ${parent.expression.getText(sourceFile).slice(0, 40)}>`
  }
  return '<anonymous>'
}

/** Module specifiers this file loads: `import … from`, `export … from`, `require()`, `import()`. */
function moduleSpecifier(node) {
  if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
    return node.moduleSpecifier.text
  }
  if (ts.isCallExpression(node) && node.arguments.length === 1 && ts.isStringLiteralLike(node.arguments[0])) {
    const callee = node.expression
    if (callee.kind === SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === 'require')) {
      return node.arguments[0].text
    }
  }
  return undefined
}

/**
 * Parses `text` and measures it. Returns the file's metrics plus its functions, each with
 * the normalised token sequence that clone detection compares.
 */
export function measureSource(fileName, text) {
  const sourceFile = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true)
  const { tokens, codeLines } = tokenize(sourceFile)
  const starts = tokens.map((t) => t.start)

  const functions = []
  const imports = new Map()
  const identifiers = new Map()
  let classes = 0
  let maxNesting = 0

  /** `owner` is the innermost enclosing function record; decisions count towards it. */
  const walk = (node, owner, depth) => {
    const specifier = moduleSpecifier(node)
    if (specifier !== undefined) imports.set(specifier, (imports.get(specifier) ?? 0) + 1)
    if (ts.isIdentifier(node)) identifiers.set(node.text, (identifiers.get(node.text) ?? 0) + 1)
    if (ts.isClassDeclaration(node) || ts.isClassExpression(node)) classes++

    let nextOwner = owner
    let nextDepth = depth
    if (FUNCTION_KINDS.has(node.kind)) {
      const start = node.getStart(sourceFile)
      const startLine = sourceFile.getLineAndCharacterOfPosition(start).line
      const endLine = sourceFile.getLineAndCharacterOfPosition(node.getEnd()).line
      const name = functionName(node, sourceFile)
      // Callbacks are only recognisable by where they are: name them after their enclosing function.
      const anonymous = name.startsWith('<')
      const named = anonymous ? owner?.named : name
      nextOwner = {
        node,
        named,
        name: anonymous && named !== undefined ? `${named} > ${name}` : name,
        line: startLine + 1,
        lines: endLine - startLine + 1,
        complexity: 1,
        start,
        end: node.getEnd(),
        params: node.parameters.length,
      }
      functions.push(nextOwner)
    } else if (owner !== undefined) {
      if (DECISION_KINDS.has(node.kind)) owner.complexity++
      else if (ts.isBinaryExpression(node) && DECISION_OPERATORS.has(node.operatorToken.kind)) owner.complexity++
    }
    if (ts.isBlock(node)) nextDepth = depth + 1
    maxNesting = Math.max(maxNesting, nextDepth)
    ts.forEachChild(node, (child) => walk(child, nextOwner, nextDepth))
  }
  walk(sourceFile, undefined, 0)

  for (const fn of functions) {
    const from = lowerBound(starts, fn.start)
    const to = lowerBound(starts, fn.end)
    const own = tokens.slice(from, to)
    const h = halstead(own)
    fn.tokens = own.map((t) => t.norm)
    fn.halsteadVolume = h.volume
    fn.maintainability = maintainabilityIndex(h.volume, fn.complexity, fn.lines)
    delete fn.node
    delete fn.named
  }

  const lineCount = text.length === 0 ? 0 : sourceFile.getLineStarts().length - (text.endsWith('\n') ? 1 : 0)
  const fileHalstead = halstead(tokens)
  const complexities = functions.map((f) => f.complexity)
  return {
    bytes: Buffer.byteLength(text),
    lines: lineCount,
    codeLines: codeLines.size,
    tokens: tokens.length,
    functions,
    classes,
    maxNesting,
    totalComplexity: complexities.reduce((a, b) => a + b, 0),
    identifiers: { total: sum(identifiers.values()), distinct: identifiers.size, top: topEntries(identifiers, 10) },
    imports: Object.fromEntries([...imports].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))),
    halstead: fileHalstead,
  }
}

/** First index whose value is >= `value` in the ascending array `sorted`. */
function lowerBound(sorted, value) {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (sorted[mid] < value) lo = mid + 1
    else hi = mid
  }
  return lo
}

function topEntries(map, n) {
  return [...map]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, n)
    .map(([name, count]) => ({ name, count }))
}

function sum(values) {
  let total = 0
  for (const v of values) total += v
  return total
}

function round(value) {
  return Math.round(value * 100) / 100
}
