using System.Reactive;

namespace Microsoft.Reactive.Testing;

/// <summary>
/// Base class for tests using virtual time: default <see cref="TestScheduler.Start{T}(Func{IObservable{T}})"/>
/// times and factory methods for expected notifications and subscriptions.
/// </summary>
public class ReactiveTest
{
    /// <summary>Default virtual time at which the sequence under test is created.</summary>
    public const long Created = 100;

    /// <summary>Default virtual time at which the sequence under test is subscribed to.</summary>
    public const long Subscribed = 200;

    /// <summary>Default virtual time at which the subscription is disposed.</summary>
    public const long Disposed = 1000;

    /// <summary>An OnNext notification of <paramref name="value"/> at <paramref name="ticks"/>.</summary>
    public static Recorded<Notification<T>> OnNext<T>(long ticks, T value) =>
        new(ticks, Notification.CreateOnNext(value));

    /// <summary>An expected OnNext at <paramref name="ticks"/> whose value must satisfy <paramref name="predicate"/>.</summary>
    public static Recorded<Notification<T>> OnNext<T>(long ticks, Func<T, bool> predicate)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        return new(ticks, new OnNextPredicate<T>(predicate));
    }

    /// <summary>An OnCompleted notification at <paramref name="ticks"/>.</summary>
    public static Recorded<Notification<T>> OnCompleted<T>(long ticks) =>
        new(ticks, Notification.CreateOnCompleted<T>());

    /// <summary>An OnCompleted notification at <paramref name="ticks"/>; <paramref name="witness"/> only fixes <typeparamref name="T"/>.</summary>
    public static Recorded<Notification<T>> OnCompleted<T>(long ticks, T witness) =>
        new(ticks, Notification.CreateOnCompleted<T>());

    /// <summary>An OnError notification of <paramref name="exception"/> at <paramref name="ticks"/>.</summary>
    public static Recorded<Notification<T>> OnError<T>(long ticks, Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return new(ticks, Notification.CreateOnError<T>(exception));
    }

    /// <summary>An expected OnError at <paramref name="ticks"/> whose exception must satisfy <paramref name="predicate"/>.</summary>
    public static Recorded<Notification<T>> OnError<T>(long ticks, Func<Exception, bool> predicate)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        return new(ticks, new OnErrorPredicate<T>(predicate));
    }

    /// <summary>An OnError notification at <paramref name="ticks"/>; <paramref name="witness"/> only fixes <typeparamref name="T"/>.</summary>
    public static Recorded<Notification<T>> OnError<T>(long ticks, Exception exception, T witness)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return new(ticks, Notification.CreateOnError<T>(exception));
    }

    /// <summary>An expected OnError matched by <paramref name="predicate"/>; <paramref name="witness"/> only fixes <typeparamref name="T"/>.</summary>
    public static Recorded<Notification<T>> OnError<T>(long ticks, Func<Exception, bool> predicate, T witness)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        return new(ticks, new OnErrorPredicate<T>(predicate));
    }

    /// <summary>A subscription from <paramref name="start"/> to <paramref name="end"/>.</summary>
    public static Subscription Subscribe(long start, long end) => new(start, end);

    /// <summary>A subscription from <paramref name="start"/> that was never disposed.</summary>
    public static Subscription Subscribe(long start) => new(start);
}
