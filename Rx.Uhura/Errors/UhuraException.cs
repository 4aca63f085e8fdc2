namespace Rx.Uhura;

/// <summary>
/// The base of every error Rx.Uhura reports. Errors reach the caller through a send's result, a connection's
/// <see cref="Connection.Disconnected"/> notification or a server's <c>Errors</c> stream; they are never thrown on a socket thread.
/// </summary>
public class UhuraException : Exception
{
    /// <summary>Creates an error.</summary>
    public UhuraException(string message, Exception? innerException = null) : base(message, innerException) { }

    /// <summary>The id of the connection the error belongs to, when it belongs to one.</summary>
    public string? ConnectionId { get; internal set; }
}
