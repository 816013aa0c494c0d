//! The app's words in English and Simplified Chinese.
//!
//! Every string the window shows is a [`Tr`] key; the table below gives each key its
//! English and Chinese text, so a key without a translation does not compile. Strings with
//! values in them are functions of [`Lang`] at the end of the file.

/// A language the app speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// English: the default, and what any locale other than a Chinese one gets.
    #[default]
    En,
    /// Simplified Chinese (zh-CN).
    ZhCn,
}

impl Lang {
    /// The language a locale name such as `zh_CN.UTF-8`, `zh-Hans` or `en_US` asks for:
    /// Chinese for any `zh`, English otherwise.
    pub fn from_locale(locale: &str) -> Lang {
        let lower = locale.trim().to_ascii_lowercase();
        if lower == "zh" || lower.starts_with("zh_") || lower.starts_with("zh-") {
            Lang::ZhCn
        } else {
            Lang::En
        }
    }

    /// The system's language, from `LC_ALL`, `LC_MESSAGES` or `LANG` (the first one set
    /// and not `C`/`POSIX`), English if none says.
    pub fn from_environment() -> Lang {
        ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .find(|value| !value.is_empty() && value != "C" && value != "POSIX")
            .map_or(Lang::En, |value| Lang::from_locale(&value))
    }

    /// A setting value: `en` or `zh-CN` (also `zh`, `zh_CN`).
    pub fn parse(value: &str) -> Option<Lang> {
        match value.trim().to_ascii_lowercase().as_str() {
            "en" | "english" => Some(Lang::En),
            "zh" | "zh-cn" | "zh_cn" | "chinese" => Some(Lang::ZhCn),
            _ => None,
        }
    }

    /// The language's own name, for the switch in settings.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::ZhCn => "简体中文",
        }
    }

    /// The text of `key` in this language.
    pub fn tr(self, key: Tr) -> &'static str {
        key.text(self)
    }
}

macro_rules! texts {
    ($($key:ident => $en:literal, $zh:literal;)*) => {
        /// A string the window shows; [`Lang::tr`] gives its text.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Tr {
            $(
                #[doc = $en]
                $key,
            )*
        }

        impl Tr {
            /// Every key (for the completeness test).
            pub const ALL: &'static [Tr] = &[$(Tr::$key),*];

            /// The text in `lang`.
            pub fn text(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $(
                        (Tr::$key, Lang::En) => $en,
                        (Tr::$key, Lang::ZhCn) => $zh,
                    )*
                }
            }
        }
    };
}

texts! {
    AppTitle => "Uchat", "Uchat 优聊";
    Relay => "Relay (host:port)", "中继服务器（主机:端口）";
    Username => "Username", "用户名";
    Password => "Password", "密码";
    SignIn => "Sign in", "登录";
    Register => "Register", "注册";
    Unlock => "Unlock", "解锁";
    NewDevice => "This is a new device (makes new keys; other devices are signed out)", "这是新设备（生成新密钥，其他设备将退出登录）";
    SigningIn => "Connecting…", "正在连接…";
    SignInHint => "Your messages are end-to-end encrypted: the relay only carries ciphertext.", "消息端到端加密：中继服务器只转发密文。";
    RelayFingerprint => "Relay fingerprint", "中继服务器指纹";
    FingerprintFirstUse => "First connection to this relay: compare this fingerprint with the one its operator gave you.", "首次连接此中继服务器：请与管理员提供的指纹核对。";
    FingerprintTrusted => "I have compared it", "我已核对";
    Chats => "Chats", "聊天";
    Contacts => "Contacts", "联系人";
    Groups => "Groups", "群组";
    Moments => "Moments", "朋友圈";
    Profile => "Profile", "个人资料";
    Settings => "Settings", "设置";
    NoChats => "No chats yet: add a friend under Contacts.", "还没有聊天：请在“联系人”中添加好友。";
    NoChatSelected => "Choose a chat on the left.", "请在左侧选择一个聊天。";
    MessagePlaceholder => "Write a message", "输入消息";
    Send => "Send", "发送";
    SendFile => "Send file", "发送文件";
    FilePath => "File path", "文件路径";
    ChooseFile => "Choose files…", "选择文件…";
    ChoosePictures => "Choose pictures…", "选择图片…";
    ChooseAvatar => "Choose a picture…", "选择图片…";
    NoFileChooser => "No file chooser appeared: this desktop has neither xdg-desktop-portal nor zenity (install one, e.g. apt-get install zenity). Meanwhile drop files on the window or type their path.", "没有出现文件选择窗口：此桌面既没有 xdg-desktop-portal 也没有 zenity（请安装其一，例如 apt-get install zenity）。也可以把文件拖到窗口里，或输入文件路径。";
    Search => "Search", "搜索";
    SearchHistory => "Search this chat", "搜索聊天记录";
    LoadEarlier => "Load earlier messages", "加载更早的消息";
    Today => "Today", "今天";
    Yesterday => "Yesterday", "昨天";
    Pending => "waiting to be sent", "等待发送";
    Sent => "sent", "已发送";
    Delivered => "delivered", "已送达";
    Read => "read", "已读";
    SendReadReceipts => "Send read receipts (off: you see no one's either)", "发送已读回执（关闭后也看不到对方的已读）";
    Failed => "not sent", "发送失败";
    Undecryptable => "could not be decrypted", "无法解密";
    Download => "Save", "保存";
    OpenFile => "Open", "打开";
    Open => "Open", "打开";
    Online => "online", "在线";
    Offline => "offline", "离线";
    Reconnecting => "Connection to the relay lost: reconnecting… Messages you write now are sent when it is back.", "与中继服务器的连接已断开，正在重连…现在发送的消息会在恢复后发出。";
    Connected => "Connected", "已连接";
    AddFriend => "Add friend", "添加好友";
    FriendNote => "Note (optional)", "附言（可选）";
    FriendRequests => "Friend requests", "好友请求";
    OutgoingRequests => "Requests you sent", "已发送的请求";
    Accept => "Accept", "接受";
    Reject => "Reject", "拒绝";
    Remove => "Remove", "删除";
    Block => "Block", "屏蔽";
    Unblock => "Unblock", "取消屏蔽";
    Friends => "Friends", "好友";
    NoFriends => "No friends yet.", "还没有好友。";
    Message => "Message", "发消息";
    Call => "Call", "语音通话";
    SafetyNumber => "Safety number", "安全码";
    SafetyNumberHint => "Compare these digits with your friend in person or on a call: if they match, nobody is in between.", "请当面或通话时与好友核对这些数字：一致即说明没有中间人。";
    IdentityChanged => "Their keys changed: compare the safety number before trusting them.", "对方的密钥已更改：信任前请核对安全码。";
    Trust => "Trust", "信任";
    Close => "Close", "关闭";
    NewGroup => "New group", "新建群组";
    GroupName => "Group name", "群名称";
    Create => "Create", "创建";
    Members => "Members", "成员";
    Owner => "owner", "群主";
    Invite => "Invite", "邀请";
    InviteWho => "Friend to invite", "要邀请的好友";
    Kick => "Remove from group", "移出群组";
    Leave => "Leave group", "退出群组";
    NoGroups => "You are in no group.", "你还没有加入任何群组。";
    PostMoment => "Post", "发表";
    MomentPlaceholder => "Share something with your friends", "分享新鲜事";
    AddPicture => "Add picture", "添加图片";
    PicturePath => "Picture path", "图片路径";
    Like => "Like", "赞";
    Unlike => "Unlike", "取消赞";
    Comment => "Comment", "评论";
    CommentPlaceholder => "Write a comment", "写评论";
    Delete => "Delete", "删除";
    NoMoments => "No moments yet.", "还没有朋友圈动态。";
    LoadMore => "Load more", "加载更多";
    Refresh => "Refresh", "刷新";
    Signature => "Signature", "个性签名";
    Avatar => "Avatar (picture path, or drop a picture here)", "头像（图片路径，或将图片拖到这里）";
    Save => "Save", "保存";
    Language => "Language", "语言";
    AudioDevices => "Audio", "音频";
    AudioInput => "Or send a WAV file instead", "或改为发送 WAV 文件";
    AudioOutput => "Or write calls to a WAV file", "或将通话写入 WAV 文件";
    InputDevice => "Microphone", "麦克风";
    OutputDevice => "Speaker", "扬声器";
    SystemDefault => "System default", "系统默认";
    RefreshDevices => "Look for devices again", "重新查找设备";
    NoDevicesFound => "no sound devices found", "未找到音频设备";
    Notifications => "Desktop notifications", "桌面通知";
    SignOut => "Sign out", "退出登录";
    IncomingCall => "Incoming call", "来电";
    Answer => "Answer", "接听";
    Decline => "Decline", "拒接";
    Calling => "Calling…", "正在呼叫…";
    InCall => "In call", "通话中";
    Mute => "Mute", "静音";
    Unmute => "Unmute", "取消静音";
    HangUp => "Hang up", "挂断";
    CallPath => "Path", "线路";
    CallLoss => "Loss", "丢包";
    CallJitter => "Jitter", "抖动";
    CallEnded => "Call ended", "通话已结束";
    Via => "via relay", "经中继";
    Direct => "direct", "直连";
    FontMissing => "No Chinese font found: install fonts-wqy-microhei (or fonts-noto-cjk) to see Chinese text.", "未找到中文字体：请安装 fonts-wqy-microhei（或 fonts-noto-cjk）。";
    DropHint => "Drop files here to send them, or paste a picture", "将文件拖到这里发送，或粘贴图片";
    PastedPicture => "Pasted picture", "粘贴的图片";
    SendPicture => "Send picture", "发送图片";
    DiscardPicture => "Discard", "放弃";
    Me => "Me", "我";
    File => "File", "文件";
    Picture => "Picture", "图片";
    Error => "Error", "错误";
    Dismiss => "Dismiss", "知道了";
}

/// "3 unread" / "3 条未读".
pub fn unread(lang: Lang, count: usize) -> String {
    match lang {
        Lang::En => format!("{count} unread"),
        Lang::ZhCn => format!("{count} 条未读"),
    }
}

/// "alice is calling" / "alice 来电".
pub fn calling_you(lang: Lang, who: &str) -> String {
    match lang {
        Lang::En => format!("{who} is calling"),
        Lang::ZhCn => format!("{who} 来电"),
    }
}

/// "12 members" / "12 位成员".
pub fn member_count(lang: Lang, count: usize) -> String {
    match lang {
        Lang::En => format!("{count} members"),
        Lang::ZhCn => format!("{count} 位成员"),
    }
}

/// "liked by bob, carol" / "bob、carol 觉得很赞".
pub fn liked_by(lang: Lang, names: &[&str]) -> String {
    match lang {
        Lang::En => format!("♥ {}", names.join(", ")),
        Lang::ZhCn => format!("♥ {}", names.join("、")),
    }
}

/// "bob replied to alice" / "bob 回复 alice".
pub fn reply_to(lang: Lang, author: &str, to: &str) -> String {
    match lang {
        Lang::En => format!("{author} → {to}"),
        Lang::ZhCn => format!("{author} 回复 {to}"),
    }
}

/// A group change as a sentence: "alice added bob" / "alice 邀请 bob 加入了群组".
pub fn group_change(lang: Lang, change: &uchat_wire::GroupChange) -> String {
    use uchat_wire::GroupChange;
    match (change, lang) {
        (GroupChange::Created { by }, Lang::En) => format!("{by} created the group"),
        (GroupChange::Created { by }, Lang::ZhCn) => format!("{by} 创建了群组"),
        (GroupChange::Joined { user, by }, Lang::En) => format!("{by} added {user}"),
        (GroupChange::Joined { user, by }, Lang::ZhCn) => format!("{by} 邀请 {user} 加入了群组"),
        (GroupChange::Left { user, new_owner }, Lang::En) => match new_owner {
            Some(owner) => format!("{user} left; {owner} owns the group now"),
            None => format!("{user} left"),
        },
        (GroupChange::Left { user, new_owner }, Lang::ZhCn) => match new_owner {
            Some(owner) => format!("{user} 退出了群组，{owner} 成为群主"),
            None => format!("{user} 退出了群组"),
        },
        (GroupChange::Removed { user, by }, Lang::En) => format!("{by} removed {user}"),
        (GroupChange::Removed { user, by }, Lang::ZhCn) => format!("{by} 将 {user} 移出了群组"),
        (GroupChange::Synced, Lang::En) => "the member list was brought up to date".into(),
        (GroupChange::Synced, Lang::ZhCn) => "成员列表已更新".into(),
        (GroupChange::Unknown, Lang::En) => "the group changed".into(),
        (GroupChange::Unknown, Lang::ZhCn) => "群组有变化".into(),
    }
}

/// A file's size for people: "1.2 MB".
pub fn file_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_a_text_in_both_languages_and_chinese_is_not_english() {
        for key in Tr::ALL {
            let (en, zh) = (key.text(Lang::En), key.text(Lang::ZhCn));
            assert!(!en.is_empty() && !zh.is_empty(), "{key:?} lacks a text");
            if *key != Tr::AppTitle {
                assert_ne!(en, zh, "{key:?} is not translated");
            }
        }
    }

    #[test]
    fn locales_pick_the_language() {
        for (locale, lang) in [
            ("zh_CN.UTF-8", Lang::ZhCn),
            ("zh-Hans", Lang::ZhCn),
            ("zh", Lang::ZhCn),
            ("en_US.UTF-8", Lang::En),
            ("de_DE", Lang::En),
            ("", Lang::En),
        ] {
            assert_eq!(Lang::from_locale(locale), lang, "{locale}");
        }
        assert_eq!(Lang::parse("zh-CN"), Some(Lang::ZhCn));
        assert_eq!(Lang::parse("klingon"), None);
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(file_size(512), "512 B");
        assert_eq!(file_size(1536), "1.5 KB");
        assert_eq!(file_size(5 * 1024 * 1024), "5.0 MB");
    }
}
