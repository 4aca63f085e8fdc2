namespace Rx.Uhura;

/// <summary>
/// Automatic reconnection (uhura's <c>autoReconnect(min, max)</c>, done right): exponential backoff with jitter computed
/// and run by Polly, starting at <see cref="FirstDelay"/>, capped at <see cref="MaxDelay"/>, restarting after every
/// successful connect. The same policy covers the first connect (a server that is not up yet) and every reconnect.
/// </summary>
public sealed record ReconnectOptions
{
    /// <summary>The defaults: 100 ms first delay, 60 s cap, jitter on, no attempt limit.</summary>
    public static ReconnectOptions Default { get; } = new();

    /// <summary>The same delay before every attempt (socket-ipc's <c>retryDelay: ms</c>).</summary>
    public static ReconnectOptions Fixed(TimeSpan delay) => new() { Backoff = ReconnectBackoff.Constant, FirstDelay = delay, MaxDelay = delay, UseJitter = false };

    /// <summary>A random delay between <paramref name="min"/> and <paramref name="max"/> before every attempt (socket-ipc's <c>retryDelay: {min, max}</c>).</summary>
    public static ReconnectOptions RandomBetween(TimeSpan min, TimeSpan max) => new() { Backoff = ReconnectBackoff.Random, FirstDelay = min, MaxDelay = max, UseJitter = false };

    /// <summary>How the delay grows from attempt to attempt. Default <see cref="ReconnectBackoff.Exponential"/>.</summary>
    public ReconnectBackoff Backoff { get; init; } = ReconnectBackoff.Exponential;

    /// <summary>The delay before the first retry of an outage; it doubles with each failed attempt. Default 100 ms.</summary>
    public TimeSpan FirstDelay { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>The longest delay between attempts, at most <see cref="LongestDelay"/> (one day). Default 60 s.</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Whether to spread the delays randomly (Polly's decorrelated jitter) so many clients do not reconnect in step. Default true.</summary>
    public bool UseJitter { get; init; } = true;

    /// <summary>How many retries an outage may take before the client gives up and closes with an error; null = never give up. Default null.</summary>
    public int? MaxAttempts { get; init; }

    /// <summary>The random source of the jitter and of <see cref="ReconnectBackoff.Random"/>, values in [0, 1) (for tests). Default: Polly's thread-safe randomizer.</summary>
    public Func<double>? Randomizer { get; init; }

    /// <summary>The longest delay between attempts (Polly's bound on a retry strategy's delays).</summary>
    public static TimeSpan LongestDelay { get; } = TimeSpan.FromDays(1);

    internal void Validate()
    {
        if (FirstDelay <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(FirstDelay), FirstDelay, "Must be positive.");
        }

        if (MaxDelay < FirstDelay)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxDelay), MaxDelay, "Must be at least FirstDelay.");
        }

        if (MaxDelay > LongestDelay)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxDelay), MaxDelay, $"Must be at most {LongestDelay} (Polly's retry strategy waits at most a day between attempts).");
        }

        if (MaxAttempts is < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxAttempts), MaxAttempts, "Must not be negative.");
        }
    }
}

/// <summary>How a reconnection delay is chosen.</summary>
public enum ReconnectBackoff
{
    /// <summary>From <see cref="ReconnectOptions.FirstDelay"/>, doubling per failed attempt up to <see cref="ReconnectOptions.MaxDelay"/> (jittered if asked).</summary>
    Exponential,

    /// <summary>Always <see cref="ReconnectOptions.FirstDelay"/>.</summary>
    Constant,

    /// <summary>A random delay between <see cref="ReconnectOptions.FirstDelay"/> and <see cref="ReconnectOptions.MaxDelay"/> each time.</summary>
    Random,
}
