namespace Rx.Uhura.Protocol.Native;

/// <summary>Optional features a client requests in <c>Hello</c> and a server grants (a subset) in <c>Welcome</c>.</summary>
[Flags]
internal enum NativeFeatures : uint
{
    /// <summary>No optional feature.</summary>
    None = 0,

    /// <summary>Sequenced frames are acknowledged with cumulative <c>Ack</c> frames.</summary>
    Acks = 1,

    /// <summary>Both sides send <c>Ping</c> when idle and drop a link that stays silent.</summary>
    Heartbeats = 2,

    /// <summary>The session's streams survive a dropped link: unacknowledged frames are resent on the next link. Requires <see cref="Acks"/>.</summary>
    Resume = 4,

    /// <summary>Hello only: the frame carries an authentication token (a string after the heartbeat interval). Never granted back.</summary>
    Auth = 8,

    /// <summary>
    /// Hello only: the client has no session yet and <c>sessionId</c> is a new id it chose. A server that does not know
    /// the id creates the session under it (when well formed), so a client whose first link drops before its Welcome
    /// is read presents the same id again and finds that session. Never granted back.
    /// </summary>
    Propose = 16,

    /// <summary>
    /// Session changes converge on the server's order: a server's <c>Set</c> carries, in its sequence field, how many of
    /// the client's <c>Set</c> frames on this link it had applied, and the client does not apply a key it changed in a
    /// later one (the server is about to apply that change, which then wins there too). Without it, a key both sides
    /// change at once ends with each side holding the other's value.
    /// </summary>
    SessionOrder = 32,
}
