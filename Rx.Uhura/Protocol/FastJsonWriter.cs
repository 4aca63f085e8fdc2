using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.Text.Unicode;

namespace Rx.Uhura.Protocol;

/// <summary>
/// Writes the JSON of the common argument types (null, strings, booleans, integers, finite doubles) straight to UTF-8,
/// with the same text Newtonsoft.Json writes for them, so the usual event needs neither a serializer nor a
/// <see cref="System.IO.TextWriter"/>. Anything else goes through the serializer.
/// </summary>
internal static class FastJsonWriter
{
    private static readonly SearchValues<char> NeedsEscape = SearchValues.Create(
        "\"\\\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u0009\u000a\u000b\u000c\u000d\u000e\u000f"
        + "\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f\u0085\u2028\u2029");

    /// <summary>Whether <see cref="Write"/> handles every value of <paramref name="values"/>.</summary>
    public static bool CanWriteAll(ReadOnlySpan<object?> values)
    {
        foreach (var value in values)
        {
            if (!CanWrite(value))
            {
                return false;
            }
        }

        return true;
    }

    private static bool CanWrite(object? value) => value switch
    {
        null or string or bool or int or long or short or byte or sbyte or ushort or uint or ulong => true,
        double d => double.IsFinite(d),
        _ => false,
    };

    /// <summary>Writes a value <see cref="CanWriteAll"/> accepted.</summary>
    public static void Write(IBufferWriter<byte> output, object? value)
    {
        switch (value)
        {
            case null:
                output.Write("null"u8);
                break;
            case string s:
                WriteString(output, s);
                break;
            case bool b:
                output.Write(b ? "true"u8 : "false"u8);
                break;
            case int i:
                Advance(output, Utf8Formatter.TryFormat(i, output.GetSpan(11), out var n), n);
                break;
            case long l:
                Advance(output, Utf8Formatter.TryFormat(l, output.GetSpan(20), out n), n);
                break;
            case ulong ul:
                Advance(output, Utf8Formatter.TryFormat(ul, output.GetSpan(20), out n), n);
                break;
            case double d:
                WriteDouble(output, d);
                break;
            default:
                Advance(output, Utf8Formatter.TryFormat(Convert.ToInt64(value, CultureInfo.InvariantCulture), output.GetSpan(20), out n), n);
                break;
        }
    }

    /// <summary>A quoted JSON string: quote, backslash and control characters (and U+0085, U+2028, U+2029) escaped.</summary>
    public static void WriteString(IBufferWriter<byte> output, ReadOnlySpan<char> text)
    {
        Put(output, (byte)'"');
        WriteEscaped(output, text);
        Put(output, (byte)'"');
    }

    /// <summary>The inside of a JSON string, escaped as <see cref="WriteString"/> does, without the quotes.</summary>
    public static void WriteEscaped(IBufferWriter<byte> output, ReadOnlySpan<char> text)
    {
        while (!text.IsEmpty)
        {
            var clean = text.IndexOfAny(NeedsEscape);
            var run = clean < 0 ? text : text[..clean];
            while (!run.IsEmpty)
            {
                var chunk = run.Length > 4096 ? run[..4096] : run;
                if (char.IsHighSurrogate(chunk[^1]) && chunk.Length < run.Length)
                {
                    chunk = chunk[..^1]; // keep a surrogate pair in one chunk
                }

                var span = output.GetSpan(chunk.Length * 3);
                Utf8.FromUtf16(chunk, span, out var read, out var written, replaceInvalidSequences: true);
                output.Advance(written);
                run = run[read..];
            }

            if (clean < 0)
            {
                break;
            }

            WriteEscape(output, text[clean]);
            text = text[(clean + 1)..];
        }
    }

    private static void WriteEscape(IBufferWriter<byte> output, char c)
    {
        switch (c)
        {
            case '"':
                output.Write("\\\""u8);
                break;
            case '\\':
                output.Write("\\\\"u8);
                break;
            case '\n':
                output.Write("\\n"u8);
                break;
            case '\r':
                output.Write("\\r"u8);
                break;
            case '\t':
                output.Write("\\t"u8);
                break;
            case '\b':
                output.Write("\\b"u8);
                break;
            case '\f':
                output.Write("\\f"u8);
                break;
            default:
                var span = output.GetSpan(6);
                "\\u"u8.CopyTo(span);
                ((int)c).TryFormat(span[2..], out _, "x4", CultureInfo.InvariantCulture);
                output.Advance(6);
                break;
        }
    }

    /// <summary>Newtonsoft's text for a finite double: the shortest round-trip form, with ".0" when it would read as an integer.</summary>
    private static void WriteDouble(IBufferWriter<byte> output, double value)
    {
        var span = output.GetSpan(32);
        value.TryFormat(span, out var written, "R", CultureInfo.InvariantCulture);
        if (span[..written].IndexOfAny(".Ee"u8) < 0)
        {
            ".0"u8.CopyTo(span[written..]);
            written += 2;
        }

        output.Advance(written);
    }

    private static void Put(IBufferWriter<byte> output, byte b)
    {
        output.GetSpan(1)[0] = b;
        output.Advance(1);
    }

    private static void Advance(IBufferWriter<byte> output, bool formatted, int written)
    {
        if (!formatted)
        {
            throw new InvalidOperationException("The number did not fit its buffer.");
        }

        output.Advance(written);
    }
}
