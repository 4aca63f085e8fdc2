using System.Buffers;

namespace Rx.Uhura.Protocol.Native;

/// <summary>
/// The 5 bytes that open a native link: the magic <c>00 52 58 55</c> ("\0RXU") and the version byte. The client
/// writes them first; the server answers with its own. The leading <c>0x00</c> tells a native client from a Node
/// uhura wire client, whose first byte is <c>[</c> or JSON whitespace.
/// </summary>
internal static class NativePreface
{
    /// <summary>The protocol version this library speaks.</summary>
    public const byte Version = 1;

    /// <summary>The preface's length in bytes.</summary>
    public const int Length = 5;

    /// <summary>The first byte of a native link (the first byte of the magic).</summary>
    public const byte FirstByte = 0x00;

    /// <summary>The preface of this library's version: <c>00 52 58 55 01</c>.</summary>
    public static ReadOnlySpan<byte> Bytes => [0x00, 0x52, 0x58, 0x55, Version];

    private static ReadOnlySpan<byte> Magic => [0x00, 0x52, 0x58, 0x55];

    /// <summary>
    /// Reads the peer's preface from the start of <paramref name="buffer"/>. Returns false while fewer than 5 bytes
    /// are buffered (<paramref name="consumed"/> is then the buffer's start); the version is returned as sent, for the
    /// caller to accept or refuse.
    /// </summary>
    /// <exception cref="DecodeException">The bytes are not the magic; thrown as soon as a buffered byte differs, even before all 5 arrived.</exception>
    public static bool TryRead(in ReadOnlySequence<byte> buffer, out SequencePosition consumed, out byte version)
    {
        Span<byte> head = stackalloc byte[Length];
        var available = (int)Math.Min(buffer.Length, Length);
        buffer.Slice(0, available).CopyTo(head);
        var magicPart = Math.Min(available, Magic.Length);
        if (!head[..magicPart].SequenceEqual(Magic[..magicPart]))
        {
            throw new DecodeException(
                $"The stream does not start with the native preface 00 52 58 55 (\"\\0RXU\"); it starts with {Convert.ToHexString(head[..available])}.",
                Convert.ToHexString(head[..available]));
        }

        if (available < Length)
        {
            consumed = buffer.Start;
            version = 0;
            return false;
        }

        version = head[Magic.Length];
        consumed = buffer.GetPosition(Length);
        return true;
    }
}
