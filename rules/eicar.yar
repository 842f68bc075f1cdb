/*
 * The EICAR anti-virus test file (https://www.eicar.org/download-anti-malware-testfile/).
 *
 * Its 68-byte test string is matched as two halves, the first 28 bytes ($head) and the last 40
 * ($tail), counted only when the tail starts right where a head ends. So this file never holds
 * the contiguous string: other scanners do not flag the rules directory, and text that merely
 * names the test file (or quotes one half) does not match. Found anywhere in a part, not only at
 * offset 0, as mail scanners customarily do.
 *
 * math.min bounds the loop (and quiets YARA-X's slow-loop warning): only the first 1000
 * occurrences of the head are tried, plenty for a test signature.
 */
import "math"

rule EICAR_Test_File
{
    meta:
        name = "Eicar-Test-Signature"
        description = "EICAR anti-virus test file"
        reference = "https://www.eicar.org/download-anti-malware-testfile/"

    strings:
        $head = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$"
        $tail = "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

    condition:
        for any i in (1 .. math.min(#head, 1000)) : ($tail at @head[i] + 28)
}
