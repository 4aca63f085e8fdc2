namespace Rx.Uhura;

/// <summary>Where a client is in its life.</summary>
public enum ConnectionStatus
{
    /// <summary>Opening a socket and handshaking.</summary>
    Connecting,

    /// <summary>The handshake completed; events flow.</summary>
    Connected,

    /// <summary>The link ended; see <see cref="ConnectionState.Disconnect"/>.</summary>
    Disconnected,

    /// <summary>Waiting <see cref="ConnectionState.Delay"/> before attempt <see cref="ConnectionState.Attempt"/>.</summary>
    Reconnecting,

    /// <summary>Closed for good; nothing more will happen.</summary>
    Closed,
}
