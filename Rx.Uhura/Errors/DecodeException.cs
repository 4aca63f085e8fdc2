namespace Rx.Uhura;

/// <summary>
/// The peer sent bytes that are not a valid message of the protocol: malformed JSON, a stream that is not a JSON
/// array, an element over the size limit. The connection that received them is closed; nothing else is affected.
/// (The socket-ipc name for this error is <c>DecodeError</c>.)
/// </summary>
public class DecodeException : UhuraException
{
    /// <summary>Creates a decode error.</summary>
    /// <param name="message">What was wrong.</param>
    /// <param name="rawData">A prefix of the offending bytes, as text, for diagnostics (at most a few hundred characters).</param>
    /// <param name="innerException">The parser's own error, if any.</param>
    public DecodeException(string message, string? rawData = null, Exception? innerException = null) : base(message, innerException)
    {
        RawData = rawData;
    }

    /// <summary>A prefix of the data that could not be decoded, when known.</summary>
    public string? RawData { get; }
}
