using System.Text;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Protocol;

namespace Rx.Uhura.Session;

/// <summary>
/// A local change is checked before it is applied or sent, against this side's limits (the peer is expected to share
/// them, as for events): a value the peer could not read, a Set message over <see cref="ConnectionOptions.MaxMessageSize"/>,
/// or a session past <see cref="ConnectionOptions.MaxSessionKeys"/> or <see cref="ConnectionOptions.MaxSessionBytes"/>
/// would end the link at the peer, and, being part of the session, be sent again with every resume.
/// </summary>
public sealed partial class UhuraSession
{
    /// <summary>Levels the wires add around a value (the Set message's object or array, a handshake's session object).</summary>
    private const int WireDepth = 2;

    /// <summary>Bytes a Set message adds around one key and value, at most.</summary>
    private const int SetOverhead = 64;

    /// <summary>Bytes a handshake adds around the whole session (its other fields), at most; plus a few per key.</summary>
    private const int HandshakeOverhead = 1024;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    // Each key's bytes as the server counts them (UTF-8 of the key and of the value's JSON), and their sum; null when a
    // remote change or a replacement made them stale (counted again at the next local change).
    private Dictionary<string, long>? _sizes;
    private long _bytes;

    /// <summary>The limits local changes are checked against (the owner's connection options).</summary>
    internal ConnectionOptions Limits { get; init; } = ConnectionOptions.Default;

    /// <summary>Converts a local value and checks it alone (outside the gate: it runs the application's serializer).</summary>
    private JToken Encode(string key, object? value, out long size)
    {
        JToken token;
        byte[] json;
        try
        {
            token = UhuraJson.ToToken(value, _serializer, Limits.MaxJsonDepth);
            json = StrictUtf8.GetBytes(token.ToString(Formatting.None));
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Serializing runs the application's code (converters, getters): whatever it throws, the change is refused.
            throw EncodeException.ForSessionKey(key, ex.Message, ex);
        }

        try
        {
            JsonArgs.ValidateValue(json, Math.Max(1, Limits.MaxJsonDepth - WireDepth), "value");
        }
        catch (DecodeException ex)
        {
            throw EncodeException.ForSessionKey(key, ex.Message, ex);
        }

        size = Encoding.UTF8.GetByteCount(key) + json.Length;
        if (size + SetOverhead > Limits.MaxMessageSize)
        {
            throw new FrameTooLargeException(Limits.MaxMessageSize, $"The value of session key '{key}' is {size} bytes: its Set message would exceed the maximum size of {Limits.MaxMessageSize} bytes.");
        }

        return token;
    }

    /// <summary>
    /// The session's id is the server's to give (a client presents a saved one with <see cref="UhuraClientOptions.InitialSession"/>):
    /// setting it would file the session under a name the server does not know it by.
    /// </summary>
    private static void ThrowIfId(string key)
    {
        if (string.Equals(key, IdKey, StringComparison.Ordinal))
        {
            throw new ArgumentException($"'{IdKey}' names the session and cannot be set; to resume a saved session, pass it as UhuraClientOptions.InitialSession.", nameof(key));
        }
    }

    /// <summary>
    /// A copy of an initial session (<see cref="UhuraClientOptions.InitialSession"/>), checked as <see cref="Set(IEnumerable{KeyValuePair{string, object?}})"/>
    /// checks changes: every value encodable and within the limits. Unchecked, a value the peer refuses would go out with
    /// every handshake and end every link.
    /// </summary>
    internal Dictionary<string, JToken> CheckInitial(IReadOnlyDictionary<string, JToken> initial)
    {
        var copy = new Dictionary<string, JToken>(StringComparer.Ordinal);
        var changes = new List<(string Key, long Size)>(initial.Count);
        foreach (var (key, value) in initial)
        {
            ArgumentNullException.ThrowIfNull(key, nameof(initial));
            copy[key] = Encode(key, value, out var size);
            changes.Add((key, size));
        }

        lock (_gate)
        {
            CheckLimitsLocked(changes);
        }

        return copy;
    }

    /// <summary>Under <c>_gate</c>: refuses changes that would take the session past its limits (nothing applied then).</summary>
    private void CheckLimitsLocked(IReadOnlyList<(string Key, long Size)> changes)
    {
        var sizes = _sizes ??= Recount();
        var bytes = _bytes;
        var keys = sizes.Count;
        foreach (var (key, size) in changes)
        {
            if (sizes.TryGetValue(key, out var old))
            {
                bytes += size - old;
            }
            else
            {
                bytes += size;
                keys++;
            }
        }

        if (keys > Limits.MaxSessionKeys)
        {
            throw new SessionLimitException(Limits.MaxSessionKeys, $"The session would hold {keys} keys; the limit is {Limits.MaxSessionKeys} (MaxSessionKeys).");
        }

        if (bytes > Limits.MaxSessionBytes)
        {
            throw new SessionLimitException(Limits.MaxSessionBytes, $"The session would hold {bytes} bytes; the limit is {Limits.MaxSessionBytes} (MaxSessionBytes).");
        }

        if (bytes + (4L * keys) + HandshakeOverhead > Limits.MaxMessageSize)
        {
            throw new FrameTooLargeException(Limits.MaxMessageSize, $"The session would hold {bytes} bytes: a handshake carrying it would exceed the maximum message size of {Limits.MaxMessageSize} bytes.");
        }
    }

    /// <summary>Under <c>_gate</c>, after the changes were applied: their sizes are counted.</summary>
    private void NoteSizesLocked(IReadOnlyList<(string Key, long Size)> changes)
    {
        if (_sizes is not { } sizes)
        {
            return;
        }

        foreach (var (key, size) in changes)
        {
            _bytes += size - sizes.GetValueOrDefault(key);
            sizes[key] = size;
        }
    }

    private Dictionary<string, long> Recount()
    {
        var sizes = new Dictionary<string, long>(StringComparer.Ordinal);
        _bytes = 0;
        foreach (var (key, value) in _current)
        {
            var size = Encoding.UTF8.GetByteCount(key) + Encoding.UTF8.GetByteCount(value.ToString(Formatting.None));
            sizes[key] = size;
            _bytes += size;
        }

        return sizes;
    }
}
