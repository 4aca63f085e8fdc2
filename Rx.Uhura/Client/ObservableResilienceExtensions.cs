using Polly;
using Rx.Uhura.Internal;

namespace Rx.Uhura;

/// <summary>
/// Re-subscription with a Polly <see cref="ResiliencePipeline"/>: the operator the client reconnects with (its connect
/// sequence is an observable of links; reconnecting is re-subscribing), for applications' own sequences.
/// </summary>
public static class ObservableResilienceExtensions
{
    /// <summary>
    /// Mirrors <paramref name="source"/>. When it fails, <paramref name="pipeline"/> decides: if its retry strategy
    /// handles the error, it waits its delay on the pipeline's <see cref="TimeProvider"/> (a
    /// <see cref="SchedulerTimeProvider"/> puts that on an Rx scheduler's clock) and <paramref name="source"/> is
    /// subscribed to again; when it gives up or does not handle the error, that error ends the sequence. Completion
    /// passes through; disposing the subscription stops a pending wait.
    /// </summary>
    /// <remarks>
    /// A subscription that emitted a value before it failed succeeded: its failure starts a new outage, in which the
    /// pipeline's attempt count starts again and that failure is the first failed attempt (so the first delay is waited).
    /// With <paramref name="madeProgress"/>, only a subscription whose last value it accepts counts as a success; one that
    /// emitted without progress (a link that connected and dropped before delivering anything) continues the backoff,
    /// as a failure before any value does. A <paramref name="madeProgress"/> that throws counts as progress.
    /// </remarks>
    /// <typeparam name="T">The type of the values.</typeparam>
    /// <param name="source">The sequence to retry; it is subscribed once per attempt (make it cold, e.g. with <c>Observable.Defer</c>).</param>
    /// <param name="pipeline">The retry policy: which errors, how many attempts, what delays.</param>
    /// <param name="madeProgress">Given the last value of a subscription that failed, whether that subscription succeeded. Null: any value is a success.</param>
    /// <returns>The values of every subscription, in order.</returns>
    public static IObservable<T> RetryWith<T>(this IObservable<T> source, ResiliencePipeline pipeline, Func<T, bool>? madeProgress = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(pipeline);
        return RetryWithPolicy.RetryWith(source, () => pipeline, madeProgress);
    }
}
