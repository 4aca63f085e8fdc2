namespace Rx.Uhura;

/// <summary>
/// A single message larger than the configured maximum (<see cref="ConnectionOptions.MaxMessageSize"/>): received from
/// the peer, the connection is closed before it is buffered whole; about to be sent, the send fails at once and nothing
/// is sent or queued (the peer would refuse it and drop the link).
/// </summary>
public sealed class FrameTooLargeException : DecodeException
{
    /// <summary>Creates the error.</summary>
    public FrameTooLargeException(long limit) : base($"A message exceeded the maximum size of {limit} bytes.")
    {
        Limit = limit;
    }

    /// <summary>Creates the error with a message of its own (a send refused before it was sent).</summary>
    public FrameTooLargeException(long limit, string message) : base(message)
    {
        Limit = limit;
    }

    /// <summary>The configured maximum message size in bytes.</summary>
    public long Limit { get; }
}
