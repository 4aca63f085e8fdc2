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

    /// <summary>
    /// A client asks it when it can name its instance (the client object, which outlives its links); a server grants it
    /// when it reads instance ids. Carries no field: a client adds the id (<see cref="Instance"/>) only on links to a
    /// server that granted this before, since a server that does not know the field would read it as the session JSON.
    /// </summary>
    Instances = 64,

    /// <summary>
    /// Hello only: an <c>instance</c> string follows the token (or the heartbeat interval, without <see cref="Auth"/>):
    /// the id of the client object that sends the Hello. A server refuses a Hello for a session whose live link belongs
    /// to another instance (<see cref="NativeCloseCodes.SessionInUse"/>), rather than drop that link. Never granted back.
    /// </summary>
    Instance = 128,
}
