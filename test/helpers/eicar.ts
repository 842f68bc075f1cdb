/**
 * The EICAR test file, built at run time from two halves so the repository never holds the
 * string (a scanner on a developer's machine would quarantine the checkout otherwise).
 */
const HEAD = ['X5O!P%@AP[4', '\\PZX54(P^)7CC)7}$'].join('');
const TAIL = ['EICAR-STANDARD-', 'ANTIVIRUS-TEST-FILE!$H+H*'].join('');

export function eicar(): Buffer {
  return Buffer.from(HEAD + TAIL, 'latin1');
}
