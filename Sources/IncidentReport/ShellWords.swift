/// Commands a responder can paste into a shell, shown on the incident report.
///
/// The words come from the journal (user ids, client ids, addresses), which the report reads even when
/// it does not verify, so quoting must hold against any text. Hand-written: it is a few lines, and none
/// of the offline packages quotes for the shell. Options are written as one word, `--flag=value`, so a
/// value can never be read as another option.
enum ShellWords {
    /// The words joined with spaces, each quoted as it needs.
    static func command(_ words: [String]) -> String {
        words.map(quote).joined(separator: " ")
    }

    /// `word` as a shell reads it back unchanged:
    /// - as it is, when it has only letters, digits and `-_./:@,+=` (and does not start with `=`, which zsh expands);
    /// - in single quotes, when it is printable ASCII (each `'` written as `'\''`);
    /// - otherwise in ANSI-C quotes (`$'…'`, bash, zsh and ksh), with every byte outside printable ASCII
    ///   written as `\xHH`, so that control and bidirectional characters are visible, not live.
    static func quote(_ word: String) -> String {
        let scalars = word.unicodeScalars
        let plain = !word.isEmpty && scalars.first != "=" && scalars.allSatisfy { scalar in
            scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "-_./:@,+=".unicodeScalars.contains(scalar))
        }
        if plain { return word }
        if scalars.allSatisfy({ (0x20...0x7E).contains($0.value) }) {
            return "'" + scalars.map { $0 == "'" ? "'\\''" : String($0) }.joined() + "'"
        }
        var quoted = "$'"
        for byte in word.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): quoted += "\\\\"
            case UInt8(ascii: "'"): quoted += "\\'"
            case 0x20...0x7E: quoted.unicodeScalars.append(Unicode.Scalar(byte))
            default: quoted += "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
            }
        }
        return quoted + "'"
    }
}
