using System.Globalization;
using System.Text;
using System.Text.Unicode;
using Rx.Uhura.Scaleout;

namespace Rx.Uhura.PostgreSql;

/// <summary>
/// How a <see cref="BackplaneMessage"/> travels in a notification: <c>=KIND|ORIGIN|TARGET|CLIENT|CORRELATION|PAYLOAD</c>
/// (the ids percent-escaped, the payload's UTF-8 JSON as it is), or <c>#ROWID</c> for a message stored in the table,
/// whose <c>body</c> is the same text without the <c>=</c>, in UTF-8 (or any bytes after the header).
/// </summary>
internal static class PostgresBackplaneCodec
{
    /// <summary>PostgreSQL refuses a notification payload of 8000 bytes or more.</summary>
    public const int MaxNotificationBytes = 7999;

    private const char Separator = '|';

    /// <summary>Encodes a message: the notification text when it fits, otherwise the row body.</summary>
    public static (string? Inline, byte[]? Body) Encode(BackplaneMessage message, int maxNotificationBytes = MaxNotificationBytes)
    {
        var header = string.Create(CultureInfo.InvariantCulture,
            $"{(int)message.Kind}{Separator}{Escape(message.Origin)}{Separator}{Escape(message.Target)}{Separator}{Escape(message.ClientId)}{Separator}{message.CorrelationId}{Separator}");
        var payload = message.Payload.Span;
        if (1 + header.Length + payload.Length <= maxNotificationBytes && Utf8.IsValid(payload) && !payload.Contains((byte)0))
        {
            return (string.Concat("=", header, Encoding.UTF8.GetString(payload)), null);
        }

        var body = new byte[header.Length + payload.Length];
        Encoding.ASCII.GetBytes(header, body);
        payload.CopyTo(body.AsSpan(header.Length));
        return (null, body);
    }

    /// <summary>Decodes an inline notification (after its <c>=</c>).</summary>
    public static BackplaneMessage DecodeInline(ReadOnlySpan<char> text)
    {
        var fields = new string[5];
        for (var i = 0; i < 5; i++)
        {
            var end = text.IndexOf(Separator);
            if (end < 0)
            {
                throw new FormatException("A backplane notification lacks its header.");
            }

            fields[i] = text[..end].ToString();
            text = text[(end + 1)..];
        }

        var payload = new byte[Encoding.UTF8.GetByteCount(text)]; // exactly the payload: the server writes this array as it is
        Encoding.UTF8.GetBytes(text, payload);
        return Create(fields, payload);
    }

    /// <summary>Decodes a stored row's body.</summary>
    public static BackplaneMessage DecodeBody(byte[] body)
    {
        var fields = new string[5];
        var start = 0;
        for (var i = 0; i < 5; i++)
        {
            var end = Array.IndexOf(body, (byte)Separator, start);
            if (end < 0)
            {
                throw new FormatException("A stored backplane message lacks its header.");
            }

            fields[i] = Encoding.ASCII.GetString(body, start, end - start);
            start = end + 1;
        }

        return Create(fields, body.AsMemory(start));
    }

    private static BackplaneMessage Create(string[] fields, ReadOnlyMemory<byte> payload) => new(
        (BackplaneMessageKind)int.Parse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture),
        Unescape(fields[1]) ?? throw new FormatException("A backplane message has no origin."),
        Unescape(fields[2]),
        Unescape(fields[3]),
        long.Parse(fields[4], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture),
        payload);

    private static string Escape(string? value) => value is null ? "" : "!" + Uri.EscapeDataString(value); // "!" tells "" from null

    private static string? Unescape(string field) => field.Length == 0 ? null : Uri.UnescapeDataString(field[1..]);
}
