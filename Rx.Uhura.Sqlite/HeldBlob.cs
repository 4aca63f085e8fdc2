using System.Buffers.Binary;
using Rx.Uhura.Session;

namespace Rx.Uhura.Sqlite;

/// <summary>The held events of a <see cref="SessionStreamState"/> as one blob: per event, its seq (int64 LE), its length (int32 LE), its payload.</summary>
internal static class HeldBlob
{
    private const int HeaderSize = sizeof(long) + sizeof(int);

    public static byte[] Write(IReadOnlyList<HeldEvent> held)
    {
        long size = 0;
        foreach (var e in held)
        {
            size += HeaderSize + e.Payload.Length;
        }

        if (size > Array.MaxLength)
        {
            throw new ArgumentException($"The held events take {size} bytes, more than one blob holds.", nameof(held));
        }

        var blob = new byte[size];
        var at = 0;
        foreach (var e in held)
        {
            BinaryPrimitives.WriteInt64LittleEndian(blob.AsSpan(at), e.Seq);
            BinaryPrimitives.WriteInt32LittleEndian(blob.AsSpan(at + sizeof(long)), e.Payload.Length);
            e.Payload.Span.CopyTo(blob.AsSpan(at + HeaderSize));
            at += HeaderSize + e.Payload.Length;
        }

        return blob;
    }

    public static IReadOnlyList<HeldEvent> Read(byte[] blob)
    {
        var held = new List<HeldEvent>();
        var at = 0;
        while (at < blob.Length)
        {
            if (blob.Length - at < HeaderSize)
            {
                throw new InvalidDataException("A stored resume state is truncated.");
            }

            var seq = BinaryPrimitives.ReadInt64LittleEndian(blob.AsSpan(at));
            var length = BinaryPrimitives.ReadInt32LittleEndian(blob.AsSpan(at + sizeof(long)));
            at += HeaderSize;
            if (length < 0 || length > blob.Length - at)
            {
                throw new InvalidDataException("A stored resume state is truncated.");
            }

            held.Add(new HeldEvent(seq, blob.AsMemory(at, length)));
            at += length;
        }

        return held;
    }
}
