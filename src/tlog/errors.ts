/**
 * Operating errors of the log formats: untrusted text (a note, a checkpoint, a proof bundle,
 * a key) that is malformed or does not verify. They are DomainErrors with code invalid_input
 * so the HTTP edge maps them like any other bad input; `rule` names the specification that
 * refused the input and `details.reason` says which check.
 */
import { DomainError } from '../core/errors.ts';

export type TlogRule = 'c2sp-signed-note' | 'c2sp-tlog-checkpoint' | 'c2sp-tlog-cosignature' | 'c2sp-tlog-proof' | 'rfc-9162-proof';

export function tlogError(rule: TlogRule, reason: string, message: string): DomainError {
  return new DomainError('invalid_input', message, { rule, details: { reason } });
}
