namespace Rx.Uhura;

/// <summary>The client gave up reconnecting after <see cref="ReconnectOptions.MaxAttempts"/> retries; the inner exception is the last failure.</summary>
public sealed class ReconnectFailedException : UhuraException
{
    /// <summary>Creates the error.</summary>
    public ReconnectFailedException(int attempts, Exception lastError)
        : base($"Gave up connecting after {attempts + 1} attempt(s): {lastError.Message}", lastError)
    {
        Attempts = attempts + 1;
    }

    /// <summary>How many attempts were made in the last outage (the first try plus the retries).</summary>
    public int Attempts { get; }
}
