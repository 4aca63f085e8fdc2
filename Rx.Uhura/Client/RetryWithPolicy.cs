using System.Reactive.Linq;
using Polly;

namespace Rx.Uhura.Internal;

/// <summary>Thrown into a retried sequence to ask for an immediate re-subscription (a forced reconnect), bypassing the backoff.</summary>
internal sealed class ResubscribeNowException : Exception
{
    public ResubscribeNowException() : base("Re-subscription requested.") { }
}

/// <summary>
/// Re-subscription with a Polly backoff: the reconnect loop of the client, as an Rx operator.
/// </summary>
internal static class RetryWithPolicy
{
    /// <summary>
    /// Mirrors <paramref name="source"/>; when it errors, Polly (from <paramref name="pipelines"/>, asked at the start of
    /// each outage) decides whether to retry, computes the delay and waits it on its <see cref="TimeProvider"/>, then
    /// the source is subscribed to again. A source that emitted before failing had succeeded (it connected) when
    /// <paramref name="madeProgress"/> (null = always) says so of the last value it emitted: its error starts a new outage,
    /// so the attempt count restarts, and counts as that outage's first failed attempt, so the first reconnect waits the
    /// first delay. A source that emitted but made no progress failed like one that did not emit: the backoff goes on.
    /// <see cref="ResubscribeNowException"/> re-subscribes at once. When the pipeline is null or gives up, the last error
    /// ends the sequence. A backoff wait is cut short (the source is subscribed to again at once) when the token
    /// <paramref name="cutShort"/> gave as the wait began is canceled; a subscription that is running is never cut by it
    /// (the source ends itself, with <see cref="ResubscribeNowException"/>).
    /// </summary>
    public static IObservable<T> RetryWith<T>(this IObservable<T> source, Func<ResiliencePipeline?> pipelines, Func<T, bool>? madeProgress = null, Func<CancellationToken>? cutShort = null) =>
        Observable.Create<T>((observer, cancellationToken) =>
        {
            // The loop must not run on the subscriber's SynchronizationContext (a UI thread, a test framework's).
            return ObserveFaults(WithoutSynchronizationContext(() => RunAsync(source, observer, pipelines, madeProgress, cutShort, cancellationToken)));
        });

    /// <summary>
    /// An <c>Observable.Create</c> body's task, its failure observed: Rx hands the failure to the observer only while
    /// subscribed, so a body that fails after its subscription was disposed (the client or node closing during a dial)
    /// would otherwise end as an <see cref="TaskScheduler.UnobservedTaskException"/>.
    /// </summary>
    internal static Task ObserveFaults(Task task)
    {
        if (!task.IsCompleted)
        {
            _ = task.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
        else if (task.IsFaulted)
        {
            _ = task.Exception;
        }

        return task;
    }

    /// <summary>
    /// The client's connect sequence: a link that ends before it delivered anything (no event received, no send
    /// acknowledged) does not reset the backoff, so a peer that accepts and then drops every link cannot make the client
    /// reconnect in a hot loop.
    /// </summary>
    public static IObservable<Connection> RetryWith(this IObservable<Connection> source, Func<ResiliencePipeline?> pipelines, Func<CancellationToken>? cutShort = null)
        => RetryWith(source, pipelines, static link => link.MadeProgress, cutShort);

    /// <summary>Runs <paramref name="action"/> with no SynchronizationContext, so the continuations it triggers inline capture none.</summary>
    private static TResult WithoutSynchronizationContext<TResult>(Func<TResult> action)
    {
        var previous = SynchronizationContext.Current;
        if (previous is null)
        {
            return action();
        }

        SynchronizationContext.SetSynchronizationContext(null);
        try
        {
            return action();
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(previous);
        }
    }

    private static async Task RunAsync<T>(IObservable<T> source, IObserver<T> observer, Func<ResiliencePipeline?> pipelines, Func<T, bool>? madeProgress, Func<CancellationToken>? cutShort, CancellationToken cancellationToken)
    {
            Exception? carried = null;
            while (true)
            {
                var pipeline = pipelines();
                Outcome result;
                try
                {
                    if (pipeline is null)
                    {
                        if (carried is not null)
                        {
                            throw carried;
                        }

                        result = await SubscribeOnceAsync(source, observer, madeProgress, cancellationToken).ConfigureAwait(false);
                    }
                    else
                    {
                        var attempt = new Attempt<T>(source, observer, madeProgress, carried, cancellationToken);
                        carried = null;
                        var waitCut = cutShort?.Invoke() ?? CancellationToken.None;
                        using var waits = waitCut.CanBeCanceled ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, waitCut) : null;
                        try
                        {
                            result = await pipeline.ExecuteAsync(
                                static async (a, _) =>
                                {
                                    if (a.Carried is { } error)
                                    {
                                        a.Carried = null; // the drop was this outage's first failed attempt
                                        throw error;
                                    }

                                    // Not Polly's token: a cut-short wait must never tear down a running subscription.
                                    return await SubscribeOnceAsync(a.Source, a.Observer, a.MadeProgress, a.CancellationToken).ConfigureAwait(false);
                                },
                                attempt,
                                waits?.Token ?? cancellationToken).ConfigureAwait(false);
                        }
                        catch (OperationCanceledException) when (waitCut.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                        {
                            carried = null; // the backoff wait was cut short: subscribe again now
                            continue;
                        }
                    }
                }
                catch (ResubscribeNowException)
                {
                    carried = null;
                    continue;
                }

                switch (result.Kind)
                {
                    case OutcomeKind.Completed:
                        observer.OnCompleted();
                        return;
                    case OutcomeKind.ResubscribeNow:
                        carried = null;
                        continue;
                    default:
                        carried = result.Error;
                        continue;
                }
            }
    }

    /// <summary>One subscription: completes with how it ended; throws its error when it failed before it emitted a value that made progress.</summary>
    private static async Task<Outcome> SubscribeOnceAsync<T>(IObservable<T> source, IObserver<T> observer, Func<T, bool>? madeProgress, CancellationToken cancellationToken)
    {
        // Continuations run inline where the source ended: all that follows is choosing a delay and arming a timer, and
        // on a virtual clock the whole schedule then runs deterministically inside the scheduler.
        var ended = new TaskCompletionSource<Outcome>();
        var emitted = false;
        T last = default!;
        using var subscription = source.Subscribe(
            value =>
            {
                emitted = true;
                last = value;
                observer.OnNext(value);
            },
            error => WithoutSynchronizationContext(() => ended.TrySetResult(error is ResubscribeNowException
                ? new Outcome(OutcomeKind.ResubscribeNow, null)
                : emitted && Succeeded(madeProgress, last) ? new Outcome(OutcomeKind.FailedAfterSuccess, error) : new Outcome(OutcomeKind.Failed, error))),
            () => WithoutSynchronizationContext(() => ended.TrySetResult(new Outcome(OutcomeKind.Completed, null))));
        using var cancel = cancellationToken.Register(() => WithoutSynchronizationContext(() => ended.TrySetCanceled(cancellationToken)));
        var outcome = await ended.Task.ConfigureAwait(false);
        if (outcome.Kind == OutcomeKind.Failed)
        {
            throw outcome.Error!; // Polly handles it: wait, then the next attempt
        }

        return outcome;
    }

    /// <summary>Whether the subscription that emitted <paramref name="last"/> made progress; a throwing predicate counts as yes (the old behaviour).</summary>
    private static bool Succeeded<T>(Func<T, bool>? madeProgress, T last)
    {
        if (madeProgress is null)
        {
            return true;
        }

        try
        {
            return madeProgress(last);
        }
        catch (Exception)
        {
            return true;
        }
    }

    private sealed class Attempt<T>(IObservable<T> source, IObserver<T> observer, Func<T, bool>? madeProgress, Exception? carried, CancellationToken cancellationToken)
    {
        public CancellationToken CancellationToken { get; } = cancellationToken;

        public IObservable<T> Source { get; } = source;

        public IObserver<T> Observer { get; } = observer;

        public Func<T, bool>? MadeProgress { get; } = madeProgress;

        public Exception? Carried { get; set; } = carried;
    }

    private enum OutcomeKind
    {
        Completed,
        Failed,
        FailedAfterSuccess,
        ResubscribeNow,
    }

    private readonly record struct Outcome(OutcomeKind Kind, Exception? Error);
}
