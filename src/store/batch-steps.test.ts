/**
 * StepSender against a client that answers when told: what goes out when, in what order,
 * and what nothing may send after (a failure, abandon). No database.
 */
import { describe, expect, it } from 'vitest';
import { arrayLiteral, inline, StepSender, type Step } from './batch-steps.ts';
import type { PoolClient } from './pool.ts';

/** A client that records each statement as it is sent, and answers each when told to. */
function recordingClient() {
  const sent: string[] = [];
  const answers: Array<{ ok: () => void; fail: (error: Error) => void }> = [];
  const client = {
    query(query: string | { text: string }) {
      sent.push(typeof query === 'string' ? query : query.text);
      return new Promise((resolve, reject) => answers.push({ ok: () => resolve({ rows: [] }), fail: reject }));
    },
  } as unknown as PoolClient;
  return { client, sent, answers };
}

const parameterised = (text: string): Step => ({ text, values: [1] });
const turn = () => new Promise((resume) => setImmediate(resume));

describe('StepSender', () => {
  it('sends a step at once when none is in flight, before add() or flush() returns', () => {
    const { client, sent } = recordingClient();
    const sender = new StepSender(client);
    sender.add(inline('BEGIN'));
    expect(sent).toEqual([]); // inline texts wait to travel together
    sender.flush();
    expect(sent).toEqual(['BEGIN']);
  });

  it('sends each further step only when the one before has answered, inline texts joined into one', async () => {
    const { client, sent, answers } = recordingClient();
    const sender = new StepSender(client);
    sender.add(inline('BEGIN'));
    sender.add(parameterised('INSERT a'));
    sender.add(inline('UPDATE b'));
    sender.add(inline('COMMIT'));
    const done = sender.done();
    expect(sent).toEqual(['BEGIN']);
    answers[0]!.ok();
    await turn();
    expect(sent).toEqual(['BEGIN', 'INSERT a']);
    answers[1]!.ok();
    await turn();
    expect(sent).toEqual(['BEGIN', 'INSERT a', 'UPDATE b;\nCOMMIT']);
    answers[2]!.ok();
    await done;
    // Quiet again: the next step goes at once.
    sender.add(parameterised('SELECT c'));
    expect(sent.at(-1)).toBe('SELECT c');
  });

  it('sends nothing after a failure, and done() throws it', async () => {
    const { client, sent, answers } = recordingClient();
    const sender = new StepSender(client);
    sender.add(parameterised('INSERT a'));
    answers[0]!.fail(new Error('refused'));
    await turn();
    sender.add(parameterised('INSERT b'));
    sender.add(inline('COMMIT'));
    await expect(sender.done()).rejects.toThrow('refused');
    expect(sent).toEqual(['INSERT a']);
  });

  it('abandons: sends nothing more, and returns once the step in flight has answered', async () => {
    const { client, sent, answers } = recordingClient();
    const sender = new StepSender(client);
    sender.add(parameterised('COPY a'));
    sender.add(parameterised('COPY b'));
    let returned = false;
    const abandoned = sender.abandon().then(() => {
      returned = true;
    });
    await turn();
    expect(returned).toBe(false);
    answers[0]!.ok();
    await abandoned;
    expect(sent).toEqual(['COPY a']);
  });
});

describe('arrayLiteral', () => {
  it('quotes every string, escapes its backslashes and quotes, and leaves NULL, numbers and booleans bare', () => {
    expect(arrayLiteral(['a', 'NULL', 'say "hi"', 'back\\slash', '{x,y}', null], 'text')).toBe('$cl${"a","NULL","say \\"hi\\"","back\\\\slash","{x,y}",NULL}$cl$::text[]');
    expect(arrayLiteral([1, -2, null], 'bigint')).toBe('$cl${1,-2,NULL}$cl$::bigint[]');
    expect(arrayLiteral([true, false], 'boolean')).toBe('$cl${true,false}$cl$::boolean[]');
    // A value holding the dollar tag is quoted the usual way instead.
    expect(arrayLiteral(["it's $cl$"], 'text')).toBe(`'{"it''s $cl$"}'::text[]`);
  });

  it('refuses what it cannot write: a fraction, or a value of another type', () => {
    expect(() => arrayLiteral([1.5], 'integer')).toThrow(/safe integer/);
    expect(() => arrayLiteral([new Date(0) as unknown as string], 'timestamptz')).toThrow(/not object/);
  });
});
