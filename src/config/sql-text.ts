/**
 * Static checks of the config values that winnow puts into SQL as they are
 * (trusted SQL): a column's `type` and `expr`, `sink.engine` and
 * `sink.partitionBy`. They run offline, at load time, and keep a value to the
 * one thing its place in the DDL expects: one type, one expression, one
 * engine. `winnow config check` and the pre-flight of `migrate up` and `run`
 * then ask ClickHouse itself (src/provisioning/preflight.ts).
 *
 * The scan follows ClickHouse's lexer where it matters for that: quoted
 * strings and identifiers (backslash escapes, doubled quotes), comments and
 * statement ends. Anything it cannot read the same way as ClickHouse (heredoc
 * strings `$$...$$`, query parameters `{x:T}`) is refused rather than guessed.
 */

export type TokenKind = 'word' | 'number' | 'string' | 'quoted' | 'open' | 'close' | 'comma' | 'other';

export interface Token {
  kind: TokenKind;
  text: string;
  /** nesting depth of brackets around the token (an open bracket counts outside itself) */
  depth: number;
  /** offset in the text */
  at: number;
}

/** What a value does wrong: `problem` says what, `fix` what to write instead. */
export interface SqlTextProblem {
  problem: string;
  fix: string;
}

const OPEN: Record<string, string> = { '(': ')', '[': ']' };
const CLOSE = new Set([')', ']']);

/** Tokens of `text`, or the first thing that makes it more than a fragment of one statement. */
export function scanSql(text: string): Token[] | SqlTextProblem {
  const tokens: Token[] = [];
  const stack: string[] = [];
  let i = 0;
  const problem = (p: string, fix: string): SqlTextProblem => ({ problem: p, fix });
  while (i < text.length) {
    const c = text[i]!;
    const next = text[i + 1];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if ((c === '-' && next === '-') || (c === '/' && next === '*') || c === '#') {
      return problem(`${c === '#' ? '#' : c + next} starts an SQL comment`, 'remove the comment');
    }
    if (c === ';') return problem('";" would end the statement', 'remove the ";" and what follows it');
    if (c === '$')
      return problem('"$" (a heredoc string $$...$$) is not allowed here', 'write strings in single quotes');
    if (c === '{' || c === '}')
      return problem(`"${c}" (a query parameter or map literal) is not allowed here`, "use map('k', v) for a map");
    if (c === "'" || c === '`' || c === '"') {
      const start = i;
      i++;
      let closed = false;
      while (i < text.length) {
        const d = text[i]!;
        if (d === '\\') {
          i += 2;
          continue;
        }
        if (d === c) {
          if (text[i + 1] === c) {
            i += 2; // a doubled quote stands for itself
            continue;
          }
          closed = true;
          i++;
          break;
        }
        i++;
      }
      if (!closed)
        return problem(
          `the quote ${c} at character ${start + 1} is never closed`,
          `close it, or escape a quote inside as \\${c}`,
        );
      tokens.push({
        kind: c === "'" ? 'string' : 'quoted',
        text: text.slice(start, i),
        depth: stack.length,
        at: start,
      });
      continue;
    }
    if (c in OPEN) {
      tokens.push({ kind: 'open', text: c, depth: stack.length, at: i });
      stack.push(OPEN[c]!);
      i++;
      continue;
    }
    if (CLOSE.has(c)) {
      const want = stack.pop();
      if (want !== c) {
        return want === undefined
          ? problem(`"${c}" at character ${i + 1} closes a bracket that was never opened`, 'balance the brackets')
          : problem(
              `"${c}" at character ${i + 1} does not match the open "${want === ')' ? '(' : '['}"`,
              'balance the brackets',
            );
      }
      tokens.push({ kind: 'close', text: c, depth: stack.length, at: i });
      i++;
      continue;
    }
    if (c === ',') {
      tokens.push({ kind: 'comma', text: c, depth: stack.length, at: i });
      i++;
      continue;
    }
    const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i));
    if (word) {
      tokens.push({ kind: 'word', text: word[0], depth: stack.length, at: i });
      i += word[0].length;
      continue;
    }
    const number = /^(0x[0-9A-Fa-f]+|\d+(\.\d*)?([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?)/.exec(text.slice(i));
    if (number) {
      tokens.push({ kind: 'number', text: number[0], depth: stack.length, at: i });
      i += number[0].length;
      continue;
    }
    tokens.push({ kind: 'other', text: c, depth: stack.length, at: i });
    i++;
  }
  if (stack.length > 0) {
    const open = stack[stack.length - 1] === ')' ? '(' : '[';
    return problem(`an open "${open}" is never closed`, 'balance the brackets');
  }
  if (tokens.length === 0) return problem('it is empty', 'write a value or leave the key out');
  return tokens;
}

const isProblem = (v: Token[] | SqlTextProblem): v is SqlTextProblem => !Array.isArray(v);

/** `Name` or `Name(...)`: a word, then at most one bracketed group that runs to the end. */
function nameAndArguments(
  text: string,
  tokens: Token[],
  what: string,
  fix: string,
): { name: string; args: Token[] } | SqlTextProblem {
  const [first, second] = tokens;
  if (first?.kind !== 'word') return { problem: `${what} starts with a name`, fix };
  if (tokens.length === 1) return { name: first.text, args: [] };
  // The group opened right after the name must close with the last token: nothing may follow it.
  const closing = tokens.findIndex((t, i) => i > 1 && t.kind === 'close' && t.depth === 0);
  if (second?.kind === 'open' && second.text === '(' && closing === tokens.length - 1) {
    return { name: first.text, args: tokens.slice(2, -1) };
  }
  const end = second?.kind === 'open' && second.text === '(' && closing > 0 ? closing + 1 : 1;
  const lead = text.slice(first.at, tokens[end - 1]!.at + tokens[end - 1]!.text.length);
  const rest = text.slice(tokens[end]!.at).trim();
  if (rest.startsWith(',')) return { problem: `the "," after ${lead} starts another column definition`, fix };
  const shown = rest.length > 40 ? `${rest.slice(0, 37)}...` : rest;
  return { problem: `"${shown}" after ${lead} is not part of ${what}`, fix };
}

export const EXPR_FIX = 'give one ClickHouse expression over _raw and the Kafka virtual columns';
export const PARTITION_FIX = 'give one ClickHouse expression over the columns, like toYYYYMM(created_at)';
export const TYPE_FIX = 'give one ClickHouse type like String, DateTime64(3) or Nullable(Int64)';

/** A column type: one type name with optional arguments, and nothing after it. */
export function checkTypeText(text: string): SqlTextProblem | undefined {
  const tokens = scanSql(text);
  if (isProblem(tokens)) return tokens;
  const shape = nameAndArguments(text, tokens, 'a type', TYPE_FIX);
  return 'problem' in shape ? shape : undefined;
}

/** Engines of a created final table: they keep block ids for insert deduplication and never drop or merge rows. */
export const FINAL_TABLE_ENGINES: readonly string[] = ['MergeTree', 'ReplicatedMergeTree', 'SharedMergeTree'];
export const ENGINE_FIX = `use MergeTree, or ReplicatedMergeTree('/path/{shard}', '{replica}') on a cluster`;

/**
 * The final table's engine: a plain MergeTree (or its replicated or shared
 * form). The other MergeTree engines replace, sum or collapse rows on merge
 * (the final table holds every first occurrence), and other engines keep no
 * block ids for insert deduplication or read from elsewhere (URL, remote,
 * Kafka). Arguments are literals or names (replication path and replica).
 */
export function checkEngineText(text: string): SqlTextProblem | undefined {
  const tokens = scanSql(text);
  if (isProblem(tokens)) return tokens;
  const shape = nameAndArguments(text, tokens, 'an engine', ENGINE_FIX);
  if ('problem' in shape) return shape;
  if (!FINAL_TABLE_ENGINES.includes(shape.name)) {
    const why = /MergeTree$/.test(shape.name)
      ? 'changes rows when parts merge; the final table keeps every first occurrence as inserted'
      : 'is not a MergeTree engine, which insert deduplication needs' +
        ' (a table engine reading from elsewhere is never allowed)';
    return { problem: `engine ${shape.name} ${why}`, fix: ENGINE_FIX };
  }
  const call = shape.args.findIndex((t, i) => t.kind === 'word' && shape.args[i + 1]?.text === '(');
  if (call >= 0) {
    return {
      problem: `the engine arguments call ${shape.args[call]!.text}(); only literals and names are allowed`,
      fix: ENGINE_FIX,
    };
  }
  return undefined;
}

/**
 * One expression: no statement end, comment or subquery. Its brackets are
 * balanced, so inside the parentheses winnow puts it in, it stays one
 * expression (ClickHouse's parser confirms that in the pre-flight).
 */
export function checkExpressionText(text: string, fix: string): SqlTextProblem | undefined {
  const tokens = scanSql(text);
  if (isProblem(tokens)) return tokens;
  const select = tokens.find((t) => t.kind === 'word' && /^(select|with)$/i.test(t.text));
  if (select) return { problem: `${select.text.toUpperCase()} starts a subquery, which is not allowed here`, fix };
  return undefined;
}

/** `"value": problem (fix)`, with a long value cut short. */
export function describeSqlTextProblem(value: string, p: SqlTextProblem): string {
  const shown = value.length > 60 ? `${value.slice(0, 57)}...` : value;
  return `${JSON.stringify(shown)}: ${p.problem} (${p.fix})`;
}
