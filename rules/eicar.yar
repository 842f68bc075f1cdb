/*
 * The EICAR anti-virus test file (https://www.eicar.org/download-anti-malware-testfile/).
 *
 * Its 68-byte test string is matched as one hex pattern: found anywhere in a part (not only at
 * offset 0, as mail scanners customarily do), however many look-alikes or halves come before
 * it (a pattern is not a bounded loop over occurrences, so repetition cannot exhaust it), and
 * never by text that quotes only a part of it. Written in hex, this file does not hold the
 * contiguous string, so other scanners do not flag the rules directory.
 */

rule EICAR_Test_File
{
    meta:
        name = "Eicar-Test-Signature"
        description = "EICAR anti-virus test file"
        reference = "https://www.eicar.org/download-anti-malware-testfile/"

    strings:
        $eicar = {
            58 35 4F 21 50 25 40 41 50 5B 34 5C 50 5A 58 35 34
            28 50 5E 29 37 43 43 29 37 7D 24 45 49 43 41 52 2D
            53 54 41 4E 44 41 52 44 2D 41 4E 54 49 56 49 52 55
            53 2D 54 45 53 54 2D 46 49 4C 45 21 24 48 2B 48 2A
        }

    condition:
        $eicar
}
