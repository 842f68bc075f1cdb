/**
 * Types for libmime 5.x, which ships none. Only the API avfilter may use; the behaviour is in
 * node_modules/libmime/lib/libmime.js. The package is CommonJS and its export is a ready
 * instance with the class as a property: `import libmime from 'libmime'` (esModuleInterop).
 */
declare module 'libmime' {
  namespace libmime {
    interface StructuredHeader {
      /** The value before the first ";" (false when the header value was empty). */
      value: string | false;
      /** Parameters, keys lower case; RFC 2231 continuations joined and charset-decoded. */
      params: Record<string, string>;
    }

    interface DecodedHeaderLine {
      key: string;
      value: string;
    }

    interface LibmimeConfig {
      Iconv?: unknown;
    }

    interface Libmime {
      /** Decodes RFC 2047 encoded words; may throw for an unusable charset. */
      decodeWords(str: string): string;
      decodeWord(charset: string, encoding: string, str: string): string;
      /** Splits "Key: value" (unfolding line breaks); does not decode encoded words. */
      decodeHeader(headerLine: string): DecodedHeaderLine;
      decodeHeaders(headers: string): Record<string, string[]>;
      /** Parses "value; key=value; ..." including RFC 2231 parameter continuations. */
      parseHeaderValue(str: string): StructuredHeader;
      buildHeaderValue(structured: StructuredHeader): string;
      detectMimeType(extension: string): string;
      detectExtension(mimeType: string): string;
      foldLines(str: string, lineLength?: number, afterSpace?: boolean): string;
      encodeWord(data: string | Buffer, mimeWordEncoding?: 'Q' | 'B', maxLength?: number): string;
      encodeWords(data: string | Buffer, mimeWordEncoding?: 'Q' | 'B', maxLength?: number, fromCharset?: string): string;
    }
  }

  const libmime: libmime.Libmime & { Libmime: new (config?: libmime.LibmimeConfig) => libmime.Libmime };
  export = libmime;
}
