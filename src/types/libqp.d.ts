/**
 * Types for libqp 2.x (quoted-printable, RFC 2045 §6.7), which ships none: only what avfilter
 * uses. The package is CommonJS: `import libqp from 'libqp'` (esModuleInterop).
 */
declare module 'libqp' {
  interface Libqp {
    /** Encodes bytes as quoted-printable, without soft line breaks. */
    encode(buffer: Buffer | string): string;
    decode(str: string): Buffer;
    /** Adds soft line breaks so no line is longer than lineLength (76 by default). */
    wrap(str: string, lineLength?: number): string;
  }
  const libqp: Libqp;
  export = libqp;
}
