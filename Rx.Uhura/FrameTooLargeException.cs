namespace Rx.Uhura;

/// <summary>The peer sent a single message larger than the configured maximum; the connection is closed before it is buffered whole.</summary>
public sealed class FrameTooLargeException : DecodeException
{
    /// <summary>Creates the error.</summary>
    public FrameTooLargeException(long limit) : base($"A message exceeded the maximum size of {limit} bytes.")
    {
        Limit = limit;
    }

    /// <summary>The configured maximum message size in bytes.</summary>
    public long Limit { get; }
}
