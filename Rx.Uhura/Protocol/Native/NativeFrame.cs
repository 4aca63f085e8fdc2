using System.Text;

namespace Rx.Uhura.Protocol.Native;

/// <summary>
/// One decoded native frame. A single struct carries every frame type: each property is valid only for the types
/// its summary lists and throws <see cref="InvalidOperationException"/> for the others. Strings and JSON payloads are
/// copied out of the pipe buffer, so a frame stays valid after the buffer is released; JSON is kept as raw UTF-8 for
/// the connection layer to parse.
/// </summary>
internal readonly struct NativeFrame
{
    private const int Handshake = 1 << (int)NativeFrameType.Hello | 1 << (int)NativeFrameType.Welcome;
    private const int Sequenced = 1 << (int)NativeFrameType.Event | 1 << (int)NativeFrameType.Set
        | 1 << (int)NativeFrameType.Ack | 1 << (int)NativeFrameType.Invalidate;
    private const int Probe = 1 << (int)NativeFrameType.Ping | 1 << (int)NativeFrameType.Pong;

    private readonly ulong _number;            // Sequence, Nonce or LastReceivedSeq
    private readonly string? _text;            // SessionId, Name or Reason
    private readonly ReadOnlyMemory<byte> _json; // Session, Args or Changes
    private readonly NativeFeatures _features;
    private readonly uint _heartbeatIntervalMs;
    private readonly ushort _closeCode;
    private readonly byte _version;
    private readonly bool _resumed;
    private readonly HelloFields? _hello; // Hello only: its optional fields

    private NativeFrame(
        NativeFrameType type,
        ulong number = 0,
        string? text = null,
        ReadOnlyMemory<byte> json = default,
        NativeFeatures features = NativeFeatures.None,
        uint heartbeatIntervalMs = 0,
        ushort closeCode = 0,
        byte version = 0,
        bool resumed = false,
        HelloFields? hello = null)
    {
        _hello = hello;
        Type = type;
        _number = number;
        _text = text;
        _json = json;
        _features = features;
        _heartbeatIntervalMs = heartbeatIntervalMs;
        _closeCode = closeCode;
        _version = version;
        _resumed = resumed;
    }

    /// <summary>The frame's type; <c>0</c> for <see langword="default"/>.</summary>
    public NativeFrameType Type { get; }

    /// <summary>Hello, Welcome: the protocol version (equal to the preface's).</summary>
    public byte Version => Is(Handshake) ? _version : throw NotCarried(nameof(Version));

    /// <summary>Hello: the features requested; Welcome: the features granted. Unknown bits are kept as sent.</summary>
    public NativeFeatures Features => Is(Handshake) ? _features : throw NotCarried(nameof(Features));

    /// <summary>Hello: the session to resume (empty = none); Welcome: the session's id.</summary>
    public string SessionId => Is(Handshake) ? _text! : throw NotCarried(nameof(SessionId));

    /// <summary>Hello: the authentication token, when <see cref="NativeFeatures.Auth"/> is set; else null.</summary>
    public string? Token => Type == NativeFrameType.Hello ? _hello?.Token : throw NotCarried(nameof(Token));

    /// <summary>Hello: the client object's instance id, when <see cref="NativeFeatures.Instance"/> is set; else null.</summary>
    public string? Instance => Type == NativeFrameType.Hello ? _hello?.Instance : throw NotCarried(nameof(Instance));

    /// <summary>Welcome: true when the link continues the previous link's session and streams.</summary>
    public bool Resumed => Type == NativeFrameType.Welcome ? _resumed : throw NotCarried(nameof(Resumed));

    /// <summary>Hello, Welcome: the highest sequence number the sender received from the peer on this session (0 = none).</summary>
    public ulong LastReceivedSeq => Is(Handshake) ? _number : throw NotCarried(nameof(LastReceivedSeq));

    /// <summary>Hello: the heartbeat interval proposed; Welcome: the interval granted (0 = none).</summary>
    public uint HeartbeatIntervalMs => Is(Handshake) ? _heartbeatIntervalMs : throw NotCarried(nameof(HeartbeatIntervalMs));

    /// <summary>Hello, Welcome: the whole session, a JSON object as UTF-8.</summary>
    public ReadOnlyMemory<byte> Session => Is(Handshake) ? _json : throw NotCarried(nameof(Session));

    /// <summary>Event, Set, Invalidate: the frame's sequence number; Ack: the cumulative sequence number acknowledged.</summary>
    public ulong Sequence => Is(Sequenced) ? _number : throw NotCarried(nameof(Sequence));

    /// <summary>Event: the event name.</summary>
    public string Name => Type == NativeFrameType.Event ? _text! : throw NotCarried(nameof(Name));

    /// <summary>Event: the arguments, a JSON array as UTF-8.</summary>
    public ReadOnlyMemory<byte> Args => Type == NativeFrameType.Event ? _json : throw NotCarried(nameof(Args));

    /// <summary>Set: the keys set, a JSON object as UTF-8.</summary>
    public ReadOnlyMemory<byte> Changes => Type == NativeFrameType.Set ? _json : throw NotCarried(nameof(Changes));

    /// <summary>Ping, Pong: the nonce (a Pong echoes its Ping's).</summary>
    public ulong Nonce => Is(Probe) ? _number : throw NotCarried(nameof(Nonce));

    /// <summary>Close: the code (<see cref="NativeCloseCodes"/>).</summary>
    public ushort CloseCode => Type == NativeFrameType.Close ? _closeCode : throw NotCarried(nameof(CloseCode));

    /// <summary>Close: the reason, for people (may be empty).</summary>
    public string Reason => Type == NativeFrameType.Close ? _text! : throw NotCarried(nameof(Reason));

    /// <summary>A Hello frame.</summary>
    public static NativeFrame CreateHello(byte version, NativeFeatures features, string sessionId, ulong lastReceivedSeq, uint heartbeatIntervalMs, ReadOnlyMemory<byte> session, string? token = null, string? instance = null)
        => new(NativeFrameType.Hello, lastReceivedSeq, sessionId, session, features, heartbeatIntervalMs, version: version, hello: token is null && instance is null ? null : new HelloFields(token, instance));

    /// <summary>A Welcome frame.</summary>
    public static NativeFrame CreateWelcome(byte version, NativeFeatures features, string sessionId, bool resumed, ulong lastReceivedSeq, uint heartbeatIntervalMs, ReadOnlyMemory<byte> session)
        => new(NativeFrameType.Welcome, lastReceivedSeq, sessionId, session, features, heartbeatIntervalMs, version: version, resumed: resumed);

    /// <summary>An Event frame.</summary>
    public static NativeFrame CreateEvent(ulong seq, string name, ReadOnlyMemory<byte> args) => new(NativeFrameType.Event, seq, name, args);

    /// <summary>A Set frame.</summary>
    public static NativeFrame CreateSet(ulong seq, ReadOnlyMemory<byte> changes) => new(NativeFrameType.Set, seq, json: changes);

    /// <summary>An Ack frame.</summary>
    public static NativeFrame CreateAck(ulong seq) => new(NativeFrameType.Ack, seq);

    /// <summary>A Ping frame.</summary>
    public static NativeFrame CreatePing(ulong nonce) => new(NativeFrameType.Ping, nonce);

    /// <summary>A Pong frame.</summary>
    public static NativeFrame CreatePong(ulong nonce) => new(NativeFrameType.Pong, nonce);

    /// <summary>A Close frame.</summary>
    public static NativeFrame CreateClose(ushort code, string reason) => new(NativeFrameType.Close, text: reason, closeCode: code);

    /// <summary>An Invalidate frame.</summary>
    public static NativeFrame CreateInvalidate(ulong seq) => new(NativeFrameType.Invalidate, seq);

    /// <summary>The frame for logs: its type and fields, JSON payloads by size only.</summary>
    public override string ToString() => Type switch
    {
        NativeFrameType.Hello => $"Hello v{_version} features={_features} session=\"{_text}\" lastReceived={_number} heartbeat={_heartbeatIntervalMs}ms ({_json.Length} bytes of session)",
        NativeFrameType.Welcome => $"Welcome v{_version} features={_features} session=\"{_text}\" resumed={_resumed} lastReceived={_number} heartbeat={_heartbeatIntervalMs}ms ({_json.Length} bytes of session)",
        NativeFrameType.Event => $"Event #{_number} \"{_text}\" ({_json.Length} bytes of args)",
        NativeFrameType.Set => $"Set #{_number} ({_json.Length} bytes of changes)",
        NativeFrameType.Ack or NativeFrameType.Invalidate => $"{Type} #{_number}",
        NativeFrameType.Ping or NativeFrameType.Pong => $"{Type} nonce={_number}",
        NativeFrameType.Close => $"Close {_closeCode} \"{_text}\"",
        _ => $"(no frame, type {(byte)Type})",
    };

    private bool Is(int types) => (types & (1 << (int)Type)) != 0;

    private InvalidOperationException NotCarried(string property)
        => new($"A {Type} frame has no {property}.");
}

/// <summary>A Hello's optional fields (one object, so that every other frame does without them).</summary>
internal sealed record HelloFields(string? Token, string? Instance);
