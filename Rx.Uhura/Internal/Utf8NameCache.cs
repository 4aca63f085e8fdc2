namespace Rx.Uhura.Internal;

/// <summary>
/// The last few event names a read loop decoded, by their UTF-8 bytes, so a stream of the same few events does not
/// allocate a string per event. Not thread-safe: one per read loop.
/// </summary>
internal sealed class Utf8NameCache
{
    private const int Slots = 8;
    private const int MaxNameBytes = 64;
    private readonly byte[]?[] _keys = new byte[Slots][];
    private readonly string?[] _values = new string[Slots];
    private int _next;

    /// <summary>The string for <paramref name="utf8"/> if it was seen recently, else null.</summary>
    public string? TryGet(ReadOnlySpan<byte> utf8)
    {
        for (var i = 0; i < Slots; i++)
        {
            if (_keys[i] is { } key && utf8.SequenceEqual(key))
            {
                return _values[i];
            }
        }

        return null;
    }

    /// <summary>The string token <paramref name="reader"/> is on, from the cache when it was seen recently (unescaped names only).</summary>
    public string Read(ref System.Text.Json.Utf8JsonReader reader)
    {
        if (reader.ValueIsEscaped)
        {
            return reader.GetString()!;
        }

        if (TryGet(reader.ValueSpan) is { } known)
        {
            return known;
        }

        var value = reader.GetString()!;
        Add(reader.ValueSpan, value);
        return value;
    }

    /// <summary>Remembers a decoded name (long names are not kept), replacing the oldest entry.</summary>
    public void Add(ReadOnlySpan<byte> utf8, string value)
    {
        if (utf8.Length > MaxNameBytes)
        {
            return;
        }

        var slot = _next;
        _next = (_next + 1) % Slots;
        _keys[slot] = utf8.ToArray();
        _values[slot] = value;
    }
}
