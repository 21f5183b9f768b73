/**
 * Who besides this account may change a file or a folder chipledger trusts: its owner, when
 * that is another account, and its group or others, when its mode lets them write. The log
 * commands' state files and the data dir are refused for either (log/state-file.ts,
 * data-dir.ts), each with words of its own. Where there are no uids (Windows), nothing is said.
 */
import type { Stats } from 'node:fs';

/** The uid this process acts as (the kernel checks its file access against the effective one); undefined where there are none. */
export function ownUid(): number | undefined {
  return process.geteuid?.();
}

/** Mode bits that let a file's group or others write it. */
const groupOrOthersWrite = 0o022;

export interface OthersAccess {
  ownUid: number;
  /** Another account owns it. */
  foreign: boolean;
  /** Its group or others may write it. */
  writable: boolean;
}

/** Whether another account owns `info`'s file and whether its group or others may write it; undefined where there are no uids. */
export function othersAccess(info: Stats): OthersAccess | undefined {
  const uid = ownUid();
  if (uid === undefined) return undefined;
  return { ownUid: uid, foreign: info.uid !== uid, writable: (info.mode & groupOrOthersWrite) !== 0 };
}
