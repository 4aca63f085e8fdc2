namespace Rx.Uhura;

/// <summary>Every default of the library, in one place. Options records start from these.</summary>
public static class UhuraDefaults
{
    /// <summary>Largest single message accepted from a peer: 16 MiB.</summary>
    public const long MaxMessageSize = 16L * 1024 * 1024;

    /// <summary>Deepest JSON nesting accepted in a message: 64.</summary>
    public const int MaxJsonDepth = 64;

    /// <summary>Sends that may wait for a link (before the handshake completes or while disconnected): 10,000.</summary>
    public const int MaxQueuedMessages = 10_000;

    /// <summary>Bytes that may wait to be written to one socket: 64 MiB.</summary>
    public const long MaxOutboundBufferBytes = 64L * 1024 * 1024;

    /// <summary>Bytes of encoded events held for one peer until it acknowledges them (queued, buffered or in flight): 64 MiB.</summary>
    public const long MaxQueuedBytes = 64L * 1024 * 1024;

    /// <summary>How long a graceful close waits for queued sends and acknowledgements: 5 seconds.</summary>
    public static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(5);

    /// <summary>How long a TLS handshake may take before the connection is dropped: 10 seconds.</summary>
    public static readonly TimeSpan TlsHandshakeTimeout = TimeSpan.FromSeconds(10);
}
