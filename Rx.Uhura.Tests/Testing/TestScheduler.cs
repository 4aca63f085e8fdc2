using System.Reactive;
using System.Reactive.Concurrency;
using System.Reactive.Disposables;

namespace Microsoft.Reactive.Testing;

/// <summary>
/// Virtual time scheduler for unit tests; absolute and relative time are both expressed in ticks.
/// </summary>
public class TestScheduler : VirtualTimeScheduler<long, long>
{
    /// <summary>
    /// Schedules an action at an absolute virtual time. Work due at or before the current clock
    /// runs at <c>Clock + 1</c>, so it never runs "in the past" or re-entrantly at the current tick.
    /// </summary>
    /// <typeparam name="TState">Type of the state passed to the action.</typeparam>
    /// <param name="state">State passed to the action.</param>
    /// <param name="dueTime">Absolute virtual time to run the action at.</param>
    /// <param name="action">Action to run.</param>
    /// <returns>Disposable that cancels the scheduled action.</returns>
    public override IDisposable ScheduleAbsolute<TState>(TState state, long dueTime, Func<IScheduler, TState, IDisposable> action)
    {
        if (dueTime <= Clock)
        {
            dueTime = Clock + 1;
        }

        return base.ScheduleAbsolute(state, dueTime, action);
    }

    /// <summary>Adds a relative tick count to an absolute tick count.</summary>
    protected override long Add(long absolute, long relative) => absolute + relative;

    /// <summary>Converts an absolute tick count to a <see cref="DateTimeOffset"/> (ticks since year 1, UTC).</summary>
    protected override DateTimeOffset ToDateTimeOffset(long absolute) => new(absolute, TimeSpan.Zero);

    /// <summary>Converts a <see cref="TimeSpan"/> to a relative tick count.</summary>
    protected override long ToRelative(TimeSpan timeSpan) => timeSpan.Ticks;

    /// <summary>
    /// Runs the scheduler: creates the sequence at <paramref name="created"/>, subscribes a recording observer at
    /// <paramref name="subscribed"/> and disposes the subscription at <paramref name="disposed"/>.
    /// </summary>
    /// <typeparam name="T">Element type.</typeparam>
    /// <param name="create">Factory for the observable sequence under test.</param>
    /// <param name="created">Virtual time at which <paramref name="create"/> is invoked.</param>
    /// <param name="subscribed">Virtual time at which the observer subscribes.</param>
    /// <param name="disposed">Virtual time at which the subscription is disposed.</param>
    /// <returns>The observer that recorded the sequence's notifications.</returns>
    public ITestableObserver<T> Start<T>(Func<IObservable<T>> create, long created, long subscribed, long disposed)
    {
        ArgumentNullException.ThrowIfNull(create);

        IObservable<T>? source = null;
        IDisposable? subscription = null;
        var observer = CreateObserver<T>();

        ScheduleAbsolute(default(object), created, (_, _) =>
        {
            source = create();
            return Disposable.Empty;
        });
        ScheduleAbsolute(default(object), subscribed, (_, _) =>
        {
            subscription = source!.Subscribe(observer);
            return Disposable.Empty;
        });
        ScheduleAbsolute(default(object), disposed, (_, _) =>
        {
            subscription!.Dispose();
            return Disposable.Empty;
        });

        Start();
        return observer;
    }

    /// <summary>
    /// Runs the scheduler with <see cref="ReactiveTest.Created"/> and <see cref="ReactiveTest.Subscribed"/>,
    /// disposing the subscription at <paramref name="disposed"/>.
    /// </summary>
    /// <typeparam name="T">Element type.</typeparam>
    /// <param name="create">Factory for the observable sequence under test.</param>
    /// <param name="disposed">Virtual time at which the subscription is disposed.</param>
    /// <returns>The observer that recorded the sequence's notifications.</returns>
    public ITestableObserver<T> Start<T>(Func<IObservable<T>> create, long disposed) =>
        Start(create, ReactiveTest.Created, ReactiveTest.Subscribed, disposed);

    /// <summary>
    /// Runs the scheduler with the default times: created at 100, subscribed at 200, disposed at 1000.
    /// </summary>
    /// <typeparam name="T">Element type.</typeparam>
    /// <param name="create">Factory for the observable sequence under test.</param>
    /// <returns>The observer that recorded the sequence's notifications.</returns>
    public ITestableObserver<T> Start<T>(Func<IObservable<T>> create) =>
        Start(create, ReactiveTest.Created, ReactiveTest.Subscribed, ReactiveTest.Disposed);

    /// <summary>
    /// Creates a hot observable: each message is emitted at its absolute time to whoever is subscribed then.
    /// </summary>
    /// <typeparam name="T">Element type.</typeparam>
    /// <param name="messages">Notifications with absolute virtual times.</param>
    /// <returns>A testable observable that records its subscriptions.</returns>
    public ITestableObservable<T> CreateHotObservable<T>(params Recorded<Notification<T>>[] messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        return new HotObservable<T>(this, messages);
    }

    /// <summary>
    /// Creates a cold observable: each subscription gets the messages at times relative to when it subscribed.
    /// </summary>
    /// <typeparam name="T">Element type.</typeparam>
    /// <param name="messages">Notifications with times relative to subscription.</param>
    /// <returns>A testable observable that records its subscriptions.</returns>
    public ITestableObservable<T> CreateColdObservable<T>(params Recorded<Notification<T>>[] messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        return new ColdObservable<T>(this, messages);
    }

    /// <summary>Creates an observer that records notifications with this scheduler's clock.</summary>
    /// <typeparam name="T">Element type.</typeparam>
    /// <returns>A recording observer.</returns>
    public ITestableObserver<T> CreateObserver<T>() => new MockObserver<T>(this);
}
