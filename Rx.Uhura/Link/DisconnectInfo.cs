namespace Rx.Uhura;

/// <summary>Why a link ended.</summary>
public enum DisconnectReason
{
    /// <summary>This side closed it (<c>Disconnect</c>, <c>Close</c>, <c>Dispose</c>).</summary>
    LocalClose,

    /// <summary>The peer closed the socket.</summary>
    RemoteClose,

    /// <summary>The socket failed (reset, broken pipe, ...).</summary>
    TransportError,

    /// <summary>The peer sent data this side could not accept; <see cref="DisconnectInfo.Error"/> says what.</summary>
    ProtocolError,

    /// <summary>The server invalidated the session.</summary>
    SessionInvalidated,

    /// <summary>The peer read too slowly and <see cref="SlowConsumerPolicy.Disconnect"/> ended the link; <see cref="DisconnectInfo.Error"/> is a <see cref="SlowConsumerException"/>.</summary>
    SlowConsumer,

    /// <summary>The server refused the client at the handshake; <see cref="DisconnectInfo.Error"/> is an <see cref="AuthenticationFailedException"/>.</summary>
    Unauthorized,

    /// <summary>
    /// The server turned the client away at the handshake: another client object's live link holds the session it
    /// presented; <see cref="DisconnectInfo.Error"/> is a <see cref="SessionInUseException"/>. The client tries again.
    /// </summary>
    SessionInUse,
}

/// <summary>The end of a link: why, and the error when there was one.</summary>
/// <param name="Reason">Why the link ended.</param>
/// <param name="Error">The error, for <see cref="DisconnectReason.TransportError"/> and <see cref="DisconnectReason.ProtocolError"/>.</param>
public sealed record DisconnectInfo(DisconnectReason Reason, Exception? Error = null);
