namespace Rx.Uhura.Protocol.Native;

/// <summary>The codes of a <c>Close</c> frame. Receivers treat a code they do not know like <see cref="GoingAway"/>.</summary>
internal static class NativeCloseCodes
{
    /// <summary>The sender ends the link on purpose and will not resume it.</summary>
    public const ushort Normal = 0;

    /// <summary>The receiver broke the protocol; the reason says how.</summary>
    public const ushort ProtocolError = 1;

    /// <summary>The sender is shutting down or restarting; a client reconnects (and resumes if it can).</summary>
    public const ushort GoingAway = 2;

    /// <summary>The session was invalidated; a client that reconnects starts a new session.</summary>
    public const ushort SessionInvalidated = 3;

    /// <summary>Server → client, instead of <c>Welcome</c>: the server refused the client (authentication); the reason says why. The client does not retry.</summary>
    public const ushort Unauthorized = 4;

    /// <summary>
    /// The receiver cannot read the sender's next event (its frame is over the receiver's size limit, or its JSON does
    /// not decode): it counts that event as received without delivering it, acknowledges the events before it, and ends
    /// the link. The sender fails that one send instead of sending it again; the rest resume on the next link.
    /// </summary>
    public const ushort EventRefused = 5;

    /// <summary>
    /// Server → client, instead of <c>Welcome</c>: the session the client presented has a live link from another client
    /// instance, which keeps it. The client tries again with its reconnect backoff (it gets the session once that link
    /// is gone), and the other client's link is not disturbed.
    /// </summary>
    public const ushort SessionInUse = 6;
}
